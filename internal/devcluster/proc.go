package devcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one child process of the cluster, tracked by its PID.
type Process struct {
	Name    string // "postgres", "nats-1", "room-0", …
	Log     string // file receiving its stdout and stderr
	PID     int
	Started uint64 // start time in clock ticks since boot (/proc/PID/stat), guards against PID reuse

	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // its exit status, valid after done
}

// spawnSpec describes a process to start.
type spawnSpec struct {
	name string
	path string
	args []string
	env  []string // nil = this process's environment without AXON_* variables
	dir  string
	log  string
	// uid and gid, when uid is set, run the process as that user (PostgreSQL
	// refuses to run as root).
	uid, gid *uint32
	// detach starts the process in a session of its own, without a parent
	// death signal, so that it outlives the command that started it (axon
	// dev cluster up). Otherwise it is killed when this process dies, even
	// by SIGKILL or a test timeout's panic, which no cleanup survives.
	detach bool
}

// start starts the process with its output appended to its log file.
func start(sp spawnSpec) (*Process, error) {
	logf, err := os.OpenFile(sp.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(sp.path, sp.args...)
	cmd.Dir = sp.dir
	cmd.Env = sp.env
	if cmd.Env == nil {
		cmd.Env = childEnv()
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	attr := &syscall.SysProcAttr{}
	if sp.detach {
		attr.Setsid = true
	} else {
		// Its own process group keeps a terminal's Ctrl-C from reaching the
		// child before we stop it in order.
		attr.Setpgid = true
		attr.Pdeathsig = syscall.SIGKILL
	}
	if sp.uid != nil {
		attr.Credential = &syscall.Credential{Uid: *sp.uid, Gid: *sp.gid}
	}
	cmd.SysProcAttr = attr
	if err := spawn(cmd, !sp.detach); err != nil {
		return nil, fmt.Errorf("start %s: %w", sp.name, err)
	}
	p := &Process{Name: sp.name, Log: sp.log, PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	p.Started, _ = procStartTime(p.PID)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// childEnv is this process's environment without the AXON_* variables:
// axon refuses unknown ones (AXON_CLUSTER_TESTS, AXON_TEST_POSTGRES …),
// and the cluster's settings are given as flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AXON_") {
			env = append(env, kv)
		}
	}
	return env
}

// The parent death signal of a child is tied to the OS thread that forked
// it, not to the process: when that thread exits, the child gets the
// signal. Go may retire threads, so the children that must die with us are
// forked from one thread that is locked for the life of the process. This
// is process-wide state by nature, hence a package-level spawner.
var (
	spawnerOnce sync.Once
	spawnReqs   chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd, pinned bool) error {
	if !pinned {
		return cmd.Start()
	}
	spawnerOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked, and the goroutine never returns
			for r := range spawnReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnReqs <- spawnReq{cmd: cmd, done: done}
	return <-done
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is the process's exit status once it has exited.
func (p *Process) ExitErr() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process (nothing once it has exited).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s (pid %d): %w", p.Name, p.PID, err)
	}
	return nil
}

// Wait waits up to timeout for the process to exit.
func (p *Process) Wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// Stop sends sig (SIGTERM, or SIGINT for PostgreSQL's fast shutdown) and
// waits up to grace for the exit, then kills the process.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) error {
	if err := p.Signal(sig); err != nil {
		return err
	}
	if p.Wait(grace) {
		return nil
	}
	if err := p.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("%s (pid %d) did not exit within %s of %s; killed", p.Name, p.PID, grace, sig)
}

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	if !p.Wait(30 * time.Second) {
		return fmt.Errorf("%s (pid %d) still there 30s after SIGKILL", p.Name, p.PID)
	}
	return nil
}

// LogTail returns the last n bytes of the process's log, for errors.
func (p *Process) LogTail(n int) string { return tail(p.Log, n) }

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

// procStartTime reads a process's start time (field 22 of /proc/PID/stat)
// and whether it is a zombie.
func procStartTime(pid int) (uint64, error) {
	st, _, err := procStat(pid)
	return st, err
}

func procStat(pid int) (start uint64, state byte, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64) // field 22 overall
	return start, f[0][0], err
}

// alive reports whether pid still is the process that started at start
// (not a zombie, and not a new process that reuses the PID).
func alive(pid int, start uint64) bool {
	st, state, err := procStat(pid)
	return err == nil && state != 'Z' && (start == 0 || st == start)
}

// stopPID stops a process that is not our child (axon dev cluster down):
// sig, then SIGKILL after grace. It does nothing when the PID is no longer
// the recorded process.
func stopPID(pid int, start uint64, sig syscall.Signal, grace time.Duration) error {
	if !alive(pid, start) {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid, start) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	for range 100 {
		if !alive(pid, start) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("pid %d still there after SIGKILL", pid)
}
