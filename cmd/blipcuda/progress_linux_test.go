package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the command writes to tty, the
// test reads what a terminal would show from ptmx.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("pseudo-terminal number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestProgressOnTerminal: with stderr on a terminal, match and embed draw
// an image counter that ends complete; with -q, nothing.
func TestProgressOnTerminal(t *testing.T) {
	for _, args := range [][]string{
		{"match", imagesDir, "-m", tinyBase, "-t", "a dog"},
		{"embed", imagesDir, "-m", tinyBase, "-t", "a dog"},
		{"match", imagesDir, "-m", tinyBase, "-t", "a dog", "-q"},
	} {
		ptmx, tty := openPTY(t)
		cmd, _, _ := binCmd(t, runOpts{}, args...)
		cmd.Stderr = tty
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		tty.Close()
		var shown bytes.Buffer
		io.Copy(&shown, ptmx) // ends with EIO once the terminal is closed
		s := shown.String()
		quiet := args[len(args)-1] == "-q"
		switch {
		case quiet && strings.Contains(s, "images"):
			t.Errorf("%v: progress shown with -q: %q", args, s)
		case !quiet && (!strings.Contains(s, "\rimages 3/3 [") || !strings.Contains(s, "100%")):
			t.Errorf("%v: no finished counter on the terminal: %q", args, s)
		}
	}
}
