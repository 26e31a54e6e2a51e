package xmatrix

import (
	"crypto/rand"
	"testing"

	"github.com/axon-hs/axon/matrix/keys"
)

// benchTxn is a /send transaction body with one room message PDU, a typical
// signed inbound request.
var benchTxn = []byte(`{"origin":"origin.hs.example.com","origin_server_ts":1732000000000,"pdus":[{"auth_events":["$Wm-VzmOUOz08Ds-0NTWb1d4CZrVsJSikkeRxh6aCcUw","$onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n_g","$5jM4wQpv6lnBo7CLIghJuHdW-s2CMBJPUOGOC89ncos"],"content":{"body":"Hello there, this is a fairly ordinary chat message with some text in it.","m.mentions":{},"msgtype":"m.text"},"depth":12345,"hashes":{"sha256":"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},"origin_server_ts":1732000000000,"prev_events":["$KxwGjPSDEtvnFgU00fwFz-l6d2pJM6XBIaMEn81SXPT"],"room_id":"!KxwGjPSDEtvnFgU00fwFz-l6d2pJM6XBIaMEn81SXPT","sender":"@alice:origin.hs.example.com","signatures":{"origin.hs.example.com":{"ed25519:a_abcd":"KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}},"type":"m.room.message","unsigned":{"age_ts":1732000000000}}],"edus":[]}`)

const benchURI = "/_matrix/federation/v1/send/1732000000000"

func BenchmarkVerify(b *testing.B) {
	key, err := keys.Generate("a_abcd", rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	lookup := lookupFor(key, origin)
	bodies := map[string][]byte{"get": nil, "txn": benchTxn}
	for name, body := range bodies {
		b.Run(name, func(b *testing.B) {
			h, err := Sign("PUT", benchURI, origin, dest, body, key)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Verify(h, "PUT", benchURI, dest, body, lookup, 1732000000000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	key, err := keys.Generate("a_abcd", rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchTxn)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign("PUT", benchURI, origin, dest, benchTxn, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHeader(b *testing.B) {
	in := `X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:a_abcd",sig="0g4ASZCa2HlvRDkZnRrc6winZUBYoLrA7zjyuymY9La539P0X2QnLtDmIKWRRYcynZL+4ZNpUuWkngOy/J+wCQ"`
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeader(in); err != nil {
			b.Fatal(err)
		}
	}
}
