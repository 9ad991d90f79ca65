//go:build !amd64

package bytesearch

const (
	vector    = false
	minPair   = 1 << 30
	minVector = 1 << 30
	pairTurn  = 64
	setTurn   = 32
)

func pairVector(s []byte, c0, c1 byte) (base int, mask uint64) { return 0, 0 }

func setVector(s []byte, table *[2 * maxSet][32]byte, n int) (base int, mask uint64) {
	return 0, 0
}

func classVector(s []byte, tables *[4][32]byte) (base int, mask uint64) { return 0, 0 }
