package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"turf/internal/chserver"
)

// ZooKeeperHint tells a user how to get ZooKeeper on Debian.
const ZooKeeperHint = "install it with: sudo apt-get install -y zookeeper (deploy/install-deps.sh --test does)"

// debianJar is where Debian's zookeeper package puts the server; its manifest
// names every jar it needs, so it alone is the class path.
const debianJar = "/usr/share/java/zookeeper.jar"

// ZooKeeper is a running standalone ZooKeeper child process.
type ZooKeeper struct {
	Port int
	Dir  string
	cmd  *exec.Cmd
	done chan error
}

// FindZooKeeper returns the java binary and the class path of a ZooKeeper
// server: Debian's package, or the lib directory of an Apache tarball named
// by ZOOKEEPER_HOME.
func FindZooKeeper() (java, classPath string, err error) {
	java, err = exec.LookPath("java")
	if err != nil {
		return "", "", errors.New("no java on PATH for ZooKeeper; " + ZooKeeperHint)
	}
	var cp []string
	if home := os.Getenv("ZOOKEEPER_HOME"); home != "" {
		lib := filepath.Join(home, "lib")
		if _, err := os.Stat(lib); err != nil {
			return "", "", fmt.Errorf("ZOOKEEPER_HOME has no lib directory: %w", err)
		}
		cp = append(cp, filepath.Join(lib, "*"))
	} else if _, err := os.Stat(debianJar); err == nil {
		cp = append(cp, debianJar)
	} else {
		return "", "", errors.New("no ZooKeeper server found (" + debianJar + " or $ZOOKEEPER_HOME/lib); " + ZooKeeperHint)
	}
	// Debian's jar names slf4j-api but no binding; the simple one writes
	// ZooKeeper's log to stderr, which goes to a file, for when a test fails.
	if _, err := os.Stat("/usr/share/java/slf4j-simple.jar"); err == nil {
		cp = append(cp, "/usr/share/java/slf4j-simple.jar")
	}
	return java, strings.Join(cp, ":"), nil
}

// StartZooKeeper writes a config under dir, starts a standalone server on a
// free loopback port and waits until it serves clients.
func StartZooKeeper(ctx context.Context, dir string) (*ZooKeeper, error) {
	java, cp, err := FindZooKeeper()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve ZooKeeper directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o750); err != nil {
		return nil, fmt.Errorf("cannot create ZooKeeper directory: %w", err)
	}
	port, err := chserver.FreePort()
	if err != nil {
		return nil, err
	}
	// The admin server is switched off because it would listen on 8080 on
	// every interface; srvr is the only four-letter word needed, for the
	// readiness check.
	cfg := fmt.Sprintf("tickTime=1000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"admin.enableServer=false\n4lw.commands.whitelist=srvr\nmaxClientCnxns=0\n", filepath.Join(dir, "data"), port)
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o640); err != nil {
		return nil, fmt.Errorf("cannot write ZooKeeper config: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cannot open ZooKeeper log: %w", err)
	}
	// A small serial-GC heap: the test machine has two cores and also runs
	// two ClickHouse servers. ZooKeeperServerMain is the standalone server,
	// which needs no myid file.
	cmd := exec.Command(java, "-Xmx128m", "-XX:+UseSerialGC", "-Dzookeeper.admin.enableServer=false",
		"-cp", cp, "org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: a test binary killed by its timeout must not leave a JVM
	// behind holding the port.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("cannot start ZooKeeper: %w", err)
	}
	z := &ZooKeeper{Port: port, Dir: dir, cmd: cmd, done: make(chan error, 1)}
	go func() { z.done <- cmd.Wait(); logf.Close() }()
	if err := z.wait(ctx); err != nil {
		z.Stop()
		return nil, err
	}
	return z, nil
}

// Addr is host:port of the client port.
func (z *ZooKeeper) Addr() string { return "127.0.0.1:" + strconv.Itoa(z.Port) }

func (z *ZooKeeper) wait(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-z.done:
			z.done <- err
			return fmt.Errorf("ZooKeeper exited during start-up (%v); see %s", err, filepath.Join(z.Dir, "zookeeper.log"))
		default:
		}
		err := z.serving()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ZooKeeper did not answer on %s within 30s: %w; see %s", z.Addr(), err, filepath.Join(z.Dir, "zookeeper.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// serving asks ZooKeeper for its status with the srvr four-letter word. Not
// ruok: that answers "imok" as soon as the port is open, while sessions are
// still refused, and a ClickHouse 18.16 whose DDL worker fails its first
// ZooKeeper connection never retries it and crashes on the first ON CLUSTER
// query. srvr reports the version only once the server takes sessions.
func (z *ZooKeeper) serving() error {
	c, err := net.DialTimeout("tcp", z.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(c, 4096))
	if !bytes.HasPrefix(b, []byte("Zookeeper version:")) {
		return fmt.Errorf("ZooKeeper is not serving yet (srvr: %q)", bytes.TrimSpace(b))
	}
	return nil
}

// Stop ends ZooKeeper. Its data is thrown away with the test, so there is no
// point in a graceful shutdown: SIGTERM, then SIGKILL after 10s.
func (z *ZooKeeper) Stop() error {
	if z == nil || z.cmd.Process == nil {
		return nil
	}
	_ = z.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-z.done:
		z.done <- err
		return nil
	case <-time.After(10 * time.Second):
		_ = z.cmd.Process.Kill()
		z.done <- <-z.done
		return errors.New("ZooKeeper did not stop within 10s and was killed")
	}
}
