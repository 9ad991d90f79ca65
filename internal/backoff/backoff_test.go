package backoff

import (
	"testing"
	"time"
)

func TestNextDoublesUpToTheLimit(t *testing.T) {
	var d time.Duration
	var got []time.Duration
	for i := 0; i < 10; i++ {
		d = Next(d, 100*time.Millisecond)
		got = append(got, d)
	}
	if got[0] != First || got[1] != 2*First || got[9] != 100*time.Millisecond {
		t.Fatalf("%v", got)
	}
	if Next(0, 0) != First || Next(time.Second, 0) != time.Second {
		t.Fatal("the default cap is a second")
	}
}
