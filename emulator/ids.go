package emulator

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/plana-cli/plana/client"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newID returns prefix + a ULID (48-bit millisecond time, 80 random bits),
// so ids read like the contract's "key_01J..." and sort roughly by creation.
func newID(prefix string, t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	rand.Read(b[6:])
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	// 128 bits as 26 base32 digits: the first digit holds the top 3 bits.
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return prefix + string(out[:])
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// randomBase62 draws n characters uniformly from client.Base62. Bytes of 248
// and above are rejected because 256 is not a multiple of 62: keeping them
// would make the first eight characters likelier than the rest.
func randomBase62(n int) string {
	const limit = 256 - 256%len(client.Base62)
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		rand.Read(buf[:])
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, client.Base62[int(c)%len(client.Base62)])
			}
		}
	}
	return string(out)
}
