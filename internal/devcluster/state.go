package devcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// stateFile, in the state directory, records every process of the cluster
// (PID and start time) and its URLs, for `axon dev cluster down|status`
// and for people. It is rewritten after every change.
const stateFile = "state.json"

// State is the content of the state file.
type State struct {
	Dir          string      `json:"dir"`
	ClientURL    string      `json:"client_url,omitempty"`
	DatabaseURL  string      `json:"database_url,omitempty"`
	NATSURLs     []string    `json:"nats_urls,omitempty"`
	EtcdURL      string      `json:"etcd_url,omitempty"`
	NATSReplicas int         `json:"nats_replicas"`
	ProxySocket  string      `json:"haproxy_socket,omitempty"`
	Processes    []ProcState `json:"processes"`
}

// ProcState is one process of the state file.
type ProcState struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"` // postgres, nats, etcd, haproxy, worker
	Role       Role   `json:"role,omitempty"`
	PID        int    `json:"pid"`
	Start      uint64 `json:"start_ticks"`
	Log        string `json:"log"`
	Listen     string `json:"listen,omitempty"`
	Federation string `json:"federation_listen,omitempty"`
	Metrics    string `json:"metrics_listen,omitempty"`
}

// Alive reports whether the recorded process is still running (the same
// process: a reused PID does not count).
func (p ProcState) Alive() bool { return alive(p.PID, p.Start) }

func (s *State) anyAlive() bool {
	for _, p := range s.Processes {
		if p.Alive() {
			return true
		}
	}
	return false
}

// saveStateLocked writes the state file. Call with c.mu held. A failure
// is not fatal to the cluster; the file is only a record.
func (c *Cluster) saveStateLocked() {
	st := State{Dir: c.dir, NATSReplicas: c.natsReplicas}
	add := func(p *Process, kind string, fill func(*ProcState)) {
		if p == nil || p.Exited() {
			return
		}
		ps := ProcState{Name: p.Name, Kind: kind, PID: p.PID, Start: p.Started, Log: p.Log}
		if fill != nil {
			fill(&ps)
		}
		st.Processes = append(st.Processes, ps)
	}
	for _, w := range append(append([]*Worker(nil), c.workers...), c.draining...) {
		add(w.proc, "worker", func(ps *ProcState) {
			ps.Role, ps.Listen, ps.Federation, ps.Metrics = w.Role, w.Listen, w.Federation, w.Metrics
		})
	}
	if c.hap != nil {
		add(c.hap.proc, "haproxy", nil)
		if c.hap.proc != nil {
			st.ClientURL, st.ProxySocket = c.hap.url(), c.hap.socket
		}
	}
	if c.etcd != nil {
		add(c.etcd.proc, "etcd", nil)
		st.EtcdURL = c.etcd.url()
	}
	for _, n := range c.nats {
		add(n.proc, "nats", nil)
		st.NATSURLs = append(st.NATSURLs, n.url())
	}
	if c.pg != nil {
		add(c.pg.proc, "postgres", nil)
		st.DatabaseURL = c.pg.DSN()
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return
	}
	tmp := filepath.Join(c.dir, stateFile+".tmp")
	if os.WriteFile(tmp, append(data, '\n'), 0o644) == nil {
		_ = os.Rename(tmp, filepath.Join(c.dir, stateFile))
	}
}

// ReadState reads the state file of the cluster in dir.
func ReadState(dir string) (*State, error) { return readState(dir) }

func readState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return &st, nil
}

// StopDir stops every process recorded in dir's state file, by PID (a PID
// that now belongs to another process is left alone): the workers first,
// in parallel and gracefully, then haproxy, etcd, NATS and PostgreSQL. It
// is how `axon dev cluster down` stops a cluster that another command
// started.
func StopDir(dir string) error {
	st, err := readState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	var mu sync.Mutex
	stopKind := func(kind string, sig syscall.Signal, grace time.Duration) {
		var wg sync.WaitGroup
		for _, p := range st.Processes {
			if p.Kind != kind {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := stopPID(p.PID, p.Start, sig, grace); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	stopKind("worker", syscall.SIGTERM, workerGrace)
	stopKind("haproxy", syscall.SIGTERM, 10*time.Second)
	stopKind("etcd", syscall.SIGTERM, 30*time.Second)
	stopKind("nats", syscall.SIGTERM, 30*time.Second)
	stopKind("postgres", syscall.SIGINT, 30*time.Second)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	st.Processes = nil
	data, _ := json.MarshalIndent(st, "", "  ")
	return os.WriteFile(filepath.Join(dir, stateFile), append(data, '\n'), 0o644)
}
