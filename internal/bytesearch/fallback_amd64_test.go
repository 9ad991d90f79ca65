package bytesearch

import "testing"

// TestWithoutVectors runs the searches' tests as a processor without AVX2
// runs them (bytes.Index alone), whatever this one has.
func TestWithoutVectors(t *testing.T) {
	defer func(was bool) { vector = was }(vector)
	vector = false
	t.Run("Index", TestIndexAtEveryPlace)
	t.Run("First", TestIndexFindsTheFirst)
	t.Run("Set", TestSetAtEveryPlace)
	t.Run("SetCrowded", TestSetCrowded)
}
