package cjson

import "testing"

// A typical room message event as it arrives over federation.
var benchEvent = []byte(`{"auth_events":["$Wm-VzmOUOz08Ds-0NTWb1d4CZrVsJSikkeRxh6aCcUw","$onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n_g","$5jM4wQpv6lnBo7CLIghJuHdW-s2CMBJPUOGOC89ncos"],"content":{"body":"Hello there, this is a fairly ordinary chat message with some text in it.","m.mentions":{},"msgtype":"m.text"},"depth":12345,"hashes":{"sha256":"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},"origin_server_ts":1732000000000,"prev_events":["$KxwGjPSDEtvnFgU00fwFz-l6d2pJM6XBIaMEn81SXPT"],"room_id":"!KxwGjPSDEtvnFgU00fwFz-l6d2pJM6XBIaMEn81SXPT","sender":"@alice:example.org","signatures":{"example.org":{"ed25519:a_abcd":"KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}},"type":"m.room.message","unsigned":{"age_ts":1732000000000}}`)

func BenchmarkParse(b *testing.B) {
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(benchEvent, Strict); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	v, err := Parse(benchEvent, Strict)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		buf = v.AppendCanonical(buf[:0])
	}
}
