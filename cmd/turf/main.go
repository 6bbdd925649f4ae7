// Command turf is the whole of turf in one binary: collector, query API and
// dashboard (serve), schema migrations (migrate) and admin commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	summary string
	run     func(args []string) error
}

var commands = map[string]command{}

// register adds a subcommand; each lives in its own file.
func register(name, summary string, run func(args []string) error) {
	if _, dup := commands[name]; dup {
		panic("BUG: command registered twice: " + name)
	}
	commands[name] = command{summary, run}
}

func init() {
	register("version", "print turf's version", func([]string) error {
		fmt.Println("turf", version)
		return nil
	})
}

func usage() {
	fmt.Fprintf(os.Stderr, "turf %s: cookieless web analytics\n\nUsage: turf <command> [flags]\n\nCommands:\n", version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'turf <command> -h' for a command's flags. Every flag can also be set\nin the environment as TURF_<FLAG>, e.g. TURF_LISTEN=127.0.0.1:8080; flags win.\n")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		usage()
		return
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "turf: unknown command %q\n\n", name)
		usage()
		os.Exit(2)
	}
	if err := cmd.run(os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "turf %s: %v\n", name, err)
		os.Exit(1)
	}
}

// parseFlags parses args, then fills every flag not given on the command line
// from TURF_<FLAG> (upper case, dashes as underscores).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags go before arguments, e.g. --site example.com)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := envName(f.Name)
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		if e := f.Value.Set(v); e != nil {
			err = fmt.Errorf("invalid value %q for %s: %w", v, env, e)
		}
	})
	return err
}

func envName(flagName string) string {
	return "TURF_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listFlag is a repeatable flag; from the environment it takes a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// newFlagSetHook lets tests see the flag sets commands make.
var newFlagSetHook = func(*flag.FlagSet) {}

// newFlagSet makes a flag set whose -h output ends with the env rule.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: turf %s [flags]\n\n%s\n\nFlags (each also read from TURF_<FLAG> when not given, e.g. --batch-size from TURF_BATCH_SIZE):\n", name, synopsis)
		fs.PrintDefaults()
	}
	newFlagSetHook(fs)
	return fs
}
