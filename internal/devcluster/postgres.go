package devcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgres is the cluster's PostgreSQL server, standing in for
// CockroachDB: SERIALIZABLE by default, fsync off like the tests' server
// (a throwaway cluster needs no durability across a machine crash; a
// restart or crash of the server alone loses nothing committed).
type postgres struct {
	bin      string // the directory of initdb and postgres
	dir      string // data directory's parent, owned by the server's user
	log      string
	port     int
	uid, gid *uint32
	detach   bool
	proc     *Process
}

// postgresBinDir finds Debian's newest PostgreSQL server binaries,
// installing the package when they are missing (root only).
func postgresBinDir(repo string) (string, error) {
	find := func() string {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) < pgMajor(dirs[j]) })
		if len(dirs) == 0 {
			return ""
		}
		return dirs[len(dirs)-1]
	}
	if d := find(); d != "" {
		return d, nil
	}
	if err := ensureDebs(repo, "postgresql"); err != nil {
		return "", err
	}
	if d := find(); d != "" {
		return d, nil
	}
	return "", errors.New("no PostgreSQL server binaries under /usr/lib/postgresql (Debian's postgresql package)")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// ensureDebs installs missing Debian packages with the repository's
// scripts/ensure-debs.sh (as root or with password-less sudo).
func ensureDebs(repo string, pkgs ...string) error {
	cmd := exec.Command(filepath.Join(repo, "scripts", "ensure-debs.sh"), pkgs...)
	cmd.Env = childEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("installing %v: %w\n%s", pkgs, err, out)
	}
	return nil
}

func newPostgres(bin, dir, log string, port int, detach bool) (*postgres, error) {
	pg := &postgres{bin: bin, dir: dir, log: log, port: port, detach: detach}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root: use the account
		// Debian's package creates.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL as root needs the postgres account: %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		u32, g32 := uint32(uid), uint32(gid)
		pg.uid, pg.gid = &u32, &g32
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			return nil, err
		}
		if err := reachable(filepath.Dir(dir), u32); err != nil {
			return nil, err
		}
	}
	return pg, nil
}

// DSN is the URL that axon connects with.
func (pg *postgres) DSN() string {
	return fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", addr(pg.port))
}

func (pg *postgres) dataDir() string { return filepath.Join(pg.dir, "data") }

// initdb creates the database cluster.
func (pg *postgres) initdb(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, filepath.Join(pg.bin, "initdb"), "-D", pg.dataDir(), "-U", "postgres", "-A", "trust", "--no-sync")
	cmd.Env = childEnv()
	cmd.Dir = pg.dir
	if pg.uid != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: *pg.uid, Gid: *pg.gid}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

// start runs the server (the postmaster itself is our child, so its PID is
// the one we track) and waits until it accepts connections.
func (pg *postgres) start(ctx context.Context) error {
	p, err := start(spawnSpec{
		name: "postgres", path: filepath.Join(pg.bin, "postgres"),
		args: []string{"-D", pg.dataDir(), "-p", strconv.Itoa(pg.port), "-k", pg.dir,
			"-c", "listen_addresses=" + host,
			"-c", "default_transaction_isolation=serializable",
			"-c", "fsync=off",
			"-c", "max_connections=400", "-c", "shared_buffers=128MB"},
		dir: pg.dir, log: pg.log,
		uid: pg.uid, gid: pg.gid, detach: pg.detach,
	})
	if err != nil {
		return err
	}
	pg.proc = p
	return poll(ctx, "PostgreSQL ready", 60*time.Second, 100*time.Millisecond, p, pg.ping)
}

func (pg *postgres) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	return c.Ping(ctx)
}

// stop is PostgreSQL's fast shutdown (SIGINT): sessions are ended, the
// server checkpoints and exits.
func (pg *postgres) stop() error {
	if pg.proc == nil {
		return nil
	}
	return pg.proc.Stop(syscall.SIGINT, 30*time.Second)
}

// reachable checks that the user uid may traverse dir and each of its
// parents (PostgreSQL runs as its own user when we are root).
func reachable(dir string, uid uint32) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && fi.Mode().Perm()&0o001 == 0 && st.Uid != uid {
			return fmt.Errorf("PostgreSQL runs as the postgres user, which cannot traverse %s (mode %v): choose a state directory it can reach", d, fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
