package sender

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		n    int
		j    float64
		want time.Duration
	}{
		{1, 0, 2 * time.Second},
		{2, 0, 4 * time.Second},
		{3, 0.5, 8*time.Second + time.Second},
		{20, 0, time.Hour},
		{40, 0.999, time.Hour + time.Duration(float64(time.Hour)*0.25*0.999)},
	} {
		if got := Backoff(c.n, c.j); got != c.want {
			t.Errorf("Backoff(%d, %v) = %v, want %v", c.n, c.j, got, c.want)
		}
	}
}
