package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/blipcuda/blipcuda/internal/outfile"
)

// command is one subcommand.
type command struct {
	name     string
	synopsis string // after "blipcuda NAME"
	summary  string // one line, for the command list
	help     string // paragraphs shown by --help
	env      []string
	run      func(ctx context.Context, a *app, args []string) error
}

// hubEnv are the variables of the commands that use the Hugging Face cache.
var hubEnv = []string{"HF_HOME", "HF_HUB_CACHE", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_TOKEN",
	"HF_HUB_DISABLE_PROGRESS_BARS", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT", "BLIPCUDA_HUB_RETRIES"}

var commands []*command

func init() {
	commands = []*command{matchCommand, embedCommand, indexCommand, searchCommand, modelsCommand, pullCommand, convertCommand, versionCommand}
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// app is the state of one run: where output goes and how much is logged.
type app struct {
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	stdoutFile *os.File // stdout, when it is a file, for terminal checks
	stderrFile *os.File // stderr, likewise
	log        *slog.Logger
	verbose    bool
	quiet      bool
	cmd        *command
}

// errHelp reports that --help was answered; the command exits 0.
var errHelp = errors.New("help shown")

// shutdownGrace is how long the command waits, after the first SIGINT or
// SIGTERM, for the work in progress to stop before it exits anyway: a
// worker blocked in a system call (a FIFO without a writer, a hung network
// mount) never sees the cancellation, and timeout(1), systemd and
// Kubernetes must be able to stop the command gently.
const shutdownGrace = 3 * time.Second

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sigs
		cancel()
		// A second signal ends the process at once; so does the first one
		// when the work in progress has not stopped within shutdownGrace.
		// Either way the temporary file of an output being written is
		// removed.
		select {
		case <-sigs:
		case <-time.After(shutdownGrace):
			fmt.Fprintf(os.Stderr, "blipcuda: interrupted (the work in progress did not stop within %v)\n", shutdownGrace)
		}
		outfile.RemoveTemps()
		os.Exit(exitInterrupted)
	}()
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stdoutFile: os.Stdout, stderrFile: os.Stderr}
	code := a.main(ctx, os.Args[1:])
	cancel()
	os.Exit(code)
}

// main runs the command named by args[0] and returns the exit status.
func (a *app) main(ctx context.Context, args []string) int {
	a.log = newLogger(a.stderr, slog.LevelInfo)
	if len(args) == 0 {
		a.usage(a.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			c := lookupCommand(args[1])
			if c == nil {
				fmt.Fprintf(a.stderr, "blipcuda: unknown command %q\nRun 'blipcuda --help' for the list of commands.\n", args[1])
				return exitUsage
			}
			a.cmd = c
			// The command prints its own help, flags included.
			if err := c.run(ctx, a, []string{"--help"}); err != nil && !errors.Is(err, errHelp) {
				return a.fail(err)
			}
			return exitOK
		}
		a.usage(a.stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	c := lookupCommand(name)
	if c == nil {
		fmt.Fprintf(a.stderr, "blipcuda: unknown command %q\nRun 'blipcuda --help' for the list of commands.\n", name)
		return exitUsage
	}
	a.cmd = c
	err := c.run(ctx, a, args[1:])
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	if ctx.Err() != nil {
		// Whatever the error says, it comes from the interruption.
		err = fmt.Errorf("%w: %w", context.Canceled, err)
	}
	return a.fail(err)
}

// fail prints err and returns the exit status it calls for.
func (a *app) fail(err error) int {
	prefix := "blipcuda " + a.cmd.name + ": "
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "%s%s\nRun 'blipcuda %s --help' for usage.\n", prefix, ue.msg, a.cmd.name)
		return exitUsage
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(a.stderr, "%sinterrupted\n", prefix)
		a.log.Debug("interrupted", "err", err)
		return exitInterrupted
	}
	fmt.Fprintf(a.stderr, "%s%s\n", prefix, errorText(err))
	return exitFailure
}

// errorText is err's message without the "blipcuda: " the library puts
// first.
func errorText(err error) string {
	return strings.TrimPrefix(err.Error(), "blipcuda: ")
}

// parse declares the flags every command has (--verbose, --quiet), parses
// args and sets up logging. With --help it prints the command's help on
// stdout and returns errHelp.
func (a *app) parse(fs *flagSet, args []string) ([]string, error) {
	fs.boolean(&a.verbose, "verbose", "v", "log more on stderr (each Hub request, timings)")
	fs.boolean(&a.quiet, "quiet", "q", "print nothing on stderr but errors: no progress, no warnings")
	pos, err := fs.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		a.commandUsage(a.stdout, fs)
		return nil, errHelp
	}
	if err != nil {
		return nil, err
	}
	if a.verbose && a.quiet {
		return nil, usagef("--verbose and --quiet cannot be used together")
	}
	level := slog.LevelInfo
	switch {
	case a.verbose:
		level = slog.LevelDebug
	case a.quiet:
		level = slog.LevelError
	}
	a.log = newLogger(a.stderr, level)
	return pos, nil
}

const exitDoc = `Exit status: 0 success; 1 failure (unreadable input, model not found or not
downloadable, write error); 2 usage error (unknown command or flag, bad flag
value, missing argument, unknown model name, empty --text); 130 interrupted.`

func (a *app) commandUsage(w io.Writer, fs *flagSet) {
	c := a.cmd
	fmt.Fprintf(w, "Usage: blipcuda %s %s\n\n%s\n\nFlags:\n", c.name, c.synopsis, strings.TrimSpace(c.help))
	fs.printFlags(w)
	if len(c.env) > 0 {
		printEnv(w, c.env)
	}
	fmt.Fprintf(w, "\n%s\n", exitDoc)
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, `blipcuda scores how well texts describe images with the BLIP image-text
matching models (Salesforce/blip-itm-{base,large}-{coco,flickr}), giving the
numbers of transformers' BlipForImageTextRetrieval.

Usage: blipcuda COMMAND [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `  help     show the help of a command

Run 'blipcuda COMMAND --help' for a command's flags. Flags may come before or
after the arguments; "--" ends the flags. Results go to stdout; progress,
warnings and errors to stderr.
`)
	printEnv(w, nil)
	fmt.Fprintf(w, "\n%s\n", exitDoc)
}
