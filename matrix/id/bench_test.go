package id_test

import (
	"testing"

	"github.com/axon-hs/axon/matrix/id"
)

func BenchmarkParseUserID(b *testing.B) {
	inputs := map[string]string{
		"dns":        "@alice:matrix.org",
		"port":       "@alice.bob-123:matrix.example.org:8448",
		"ipv6":       "@alice:[1234:5678::abcd]:5678",
		"historical": "@Ålice ☃:example.org",
	}
	for name, in := range inputs {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := id.ParseUserID(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := id.ValidateUserIDStrict("@alice:matrix.org"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("invalid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := id.ParseUserID("@alice:matrix.org:99999"); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}

func BenchmarkParseEventID(b *testing.B) {
	inputs := map[string]string{
		"v1": "$1234567890abcdef:matrix.org",
		"v3": specV3EventID,
		"v4": specV4EventID,
	}
	for name, in := range inputs {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := id.ParseEventID(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("v4/ForFormat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := id.ValidateEventIDForFormat(specV4EventID, id.EventIDHashURLSafe); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParseServerName(b *testing.B) {
	for _, in := range []string{"matrix.org:8448", "1.2.3.4", "[1234:5678::abcd]:5678"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := id.ParseServerName(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
