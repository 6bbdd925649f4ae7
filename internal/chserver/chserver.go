// Package chserver runs a private ClickHouse server as a child process: turf's
// zero-configuration mode and the test harness both use it, so that nobody has
// to set up a database before trying turf or running its tests.
package chserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// InstallHint tells a user how to get a server on Debian, the platform turf's
// README targets.
const InstallHint = "install it with: sudo apt-get install -y clickhouse-server clickhouse-client (or pass --clickhouse with the DSN of an existing server)"

// Server is a running child ClickHouse.
type Server struct {
	Port int
	Dir  string
	cmd  *exec.Cmd
	done chan error
	// published: Publish recorded the address; Stop removes the record.
	published bool
}

// FindBinary returns the command line that starts a server: Debian ships
// clickhouse-server, the official builds a single "clickhouse" binary.
func FindBinary() ([]string, error) {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return []string{p}, nil
	}
	for _, p := range []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if _, err := os.Stat(p); err == nil {
			return []string{p}, nil
		}
	}
	if p, err := exec.LookPath("clickhouse"); err == nil {
		return []string{p, "server"}, nil
	}
	return nil, errors.New("no ClickHouse server found on PATH (clickhouse-server or clickhouse); " + InstallHint)
}

// Start writes a config under dir, starts the server on a free loopback port
// and waits until it answers queries.
func Start(ctx context.Context, dir string) (*Server, error) {
	return StartWithConfig(ctx, dir, Config{})
}

// Config adds to the generated server config. The zero Config is what Start
// uses.
type Config struct {
	// Port is the native protocol port; 0 picks a free one. A cluster needs
	// it chosen up front: every node's remote_servers names every node's port
	// before any of them is running.
	Port int
	// ExtraXML is placed inside the top-level element of config.xml, after
	// the generated settings: interserver_http_port, remote_servers, macros,
	// zookeeper and the like.
	ExtraXML string
	// ProfileXML is placed inside the default settings profile of users.xml,
	// e.g. <distributed_product_mode>global</distributed_product_mode>.
	ProfileXML string
}

// StartWithConfig is Start with additions to the config: the cluster tests
// use it to run several servers as replicas of one cluster.
func StartWithConfig(ctx context.Context, dir string, c Config) (*Server, error) {
	bin, err := FindBinary()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve ClickHouse directory: %w", err)
	}
	for _, sub := range []string{"data", "tmp", "log", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("cannot create ClickHouse directory: %w", err)
		}
	}
	port := c.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if err := writeConfig(dir, port, c.ExtraXML, c.ProfileXML); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin[0], append(bin[1:], "--config-file="+filepath.Join(dir, "config.xml"))...)
	cmd.Dir = dir
	logf, err := os.OpenFile(filepath.Join(dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cannot open ClickHouse log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C in turf's terminal reaches turf, which
	// then stops the server in order instead of both dying at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("cannot start %s: %w", bin[0], err)
	}
	s := &Server{Port: port, Dir: dir, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logf.Close() }()
	if err := s.wait(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Addr is host:port of the native protocol.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// DSN returns a DSN for database db on this server.
func (s *Server) DSN(db string) string { return "clickhouse://" + s.Addr() + "/" + db }

func (s *Server) wait(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("ClickHouse exited during start-up (%v); see %s%s", err, filepath.Join(s.Dir, "log"), exitHint(err, s.Dir))
		default:
		}
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr()}, DialTimeout: time.Second})
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err = conn.Ping(pctx)
			cancel()
			conn.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ClickHouse did not answer on %s within 60s: %w; see %s", s.Addr(), err, filepath.Join(s.Dir, "log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exitHint explains the exit status ClickHouse gives when another server
// holds its directory (70: EX_SOFTWARE, "Cannot lock file .../status").
func exitHint(err error, dir string) string {
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 70 {
		return ""
	}
	return fmt.Sprintf(". Another ClickHouse probably holds %s: is another turf command (turf serve, or a turf user/key/site/... command) running with the same --data-dir? "+
		"Wait for it to finish or stop it; turf commands use a running turf serve's ClickHouse by themselves, or pass --clickhouse with a DSN", dir)
}

// Stop asks the server to shut down and waits for it, killing it after 30s.
func (s *Server) Stop() error {
	if s == nil || s.cmd.Process == nil {
		return nil
	}
	s.unpublish()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		return nil
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return errors.New("ClickHouse did not stop within 30s and was killed")
	}
}

// Pause and Resume stop and continue the process (SIGSTOP/SIGCONT): the
// outage tests use them to make ClickHouse unresponsive without losing data.
func (s *Server) Pause() error  { return s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Kill ends the server with SIGKILL, as a crash or kill -9 would, and waits
// until it is gone; its data directory stays for a restart.
func (s *Server) Kill() error {
	if s == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Kill()
	err := <-s.done
	s.done <- err
	return nil
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago, for
// the ports a caller of StartWithConfig has to name itself.
func FreePort() (int, error) { return freePort() }

// handedOut holds the ports freePort returned: the kernel may offer a
// closed port again, and a cluster test that asks for eight ports before
// it starts any server once got the same one for two nodes.
var handedOut = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

func freePort() (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("cannot find a free port for ClickHouse: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.m[port] {
			handedOut.m[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("cannot find a free port for ClickHouse: 100 offers were all handed out before")
}

func writeConfig(dir string, port int, extraXML, profileXML string) error {
	r := strings.NewReplacer("{{DIR}}", dir, "{{PORT}}", strconv.Itoa(port), "{{EXTRA}}", extraXML)
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(r.Replace(configXML)), 0o640); err != nil {
		return fmt.Errorf("cannot write ClickHouse config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(strings.Replace(usersXML, "{{PROFILE}}", profileXML, 1)), 0o640); err != nil {
		return fmt.Errorf("cannot write ClickHouse users config: %w", err)
	}
	return nil
}

// The config listens on loopback only and keeps every file under dir. Only
// the native port is opened: turf speaks nothing else.
const configXML = `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>{{DIR}}/log/clickhouse-server.log</log>
    <errorlog>{{DIR}}/log/clickhouse-server.err.log</errorlog>
    <size>50M</size>
    <count>3</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{{PORT}}</tcp_port>
  <path>{{DIR}}/data/</path>
  <tmp_path>{{DIR}}/tmp/</tmp_path>
  <user_files_path>{{DIR}}/user_files/</user_files_path>
  <format_schema_path>{{DIR}}/format_schemas/</format_schema_path>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
{{EXTRA}}</yandex>
`

const usersXML = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>8000000000</max_memory_usage>{{PROFILE}}</default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
