// Package bustest starts throwaway embedded NATS JetStream buses for
// tests.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/bus"
)

// Start starts an embedded JetStream server in a temporary directory,
// connects to it with the streams created (partitions each), and stops
// both when the test ends.
func Start(t testing.TB, partitions int) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	emb, err := bus.StartEmbedded(ctx, bus.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	b, err := emb.Connect(ctx, bus.Options{Streams: bus.StreamsConfig{Partitions: partitions}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}
