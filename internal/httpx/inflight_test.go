package httpx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestInFlightRefusesBeyondTheBound(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	h := InFlight(2, 1, func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/sync") })(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			w.WriteHeader(http.StatusOK)
		}))
	var wg sync.WaitGroup
	start := func(path string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
		}()
		<-entered
	}
	start("/a")
	start("/b")
	start("/sync")
	for _, path := range []string{"/c", "/sync"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), CodeLimitExceeded) ||
			rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%s over the bound: %d %s %v", path, rec.Code, rec.Body, rec.Header())
		}
	}
	close(release)
	wg.Wait()
	// Slots are given back.
	done := make(chan struct{})
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/d", nil))
		close(done)
	}()
	<-entered
	<-done
	if h := InFlight(0, 0, nil)(http.NotFoundHandler()); h == nil {
		t.Fatal("disabled bounds")
	}
}
