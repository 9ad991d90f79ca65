package bytesearch

import "testing"

// TestWithoutVectors runs the searches' tests as a processor without AVX2
// runs them (bytes.Index alone).
func TestWithoutVectors(t *testing.T) {
	if !vector {
		t.Skip("this processor has no AVX2: the other tests ran without vectors")
	}
	vector = false
	defer func() { vector = true }()
	t.Run("Index", TestIndexAtEveryPlace)
	t.Run("First", TestIndexFindsTheFirst)
	t.Run("Set", TestSetAtEveryPlace)
	t.Run("SetCrowded", TestSetCrowded)
}
