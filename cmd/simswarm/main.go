// Command simswarm runs simulation campaigns: on this machine by default, on
// a cluster when one machine is not enough.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/simswarm/simswarm/internal/cpuprof"
	"github.com/simswarm/simswarm/internal/gcpace"
	"github.com/spf13/cobra"
)

// exitError carries the exit status a command wants.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func usageErr(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "simswarm",
		Short:         "Run simulation campaigns on this machine or a cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: 2, err: err}
	})
	// Every command, in one list: a reader finds them all here.
	root.AddCommand(
		runCommand(), attachCommand(), cancelCommand(), statusCommand(), logsCommand(), resultsCommand(),
		fingerprintsCommand(), baselineCommand(), compareCommand(), regressCommand(), bisectCommand(),
		dashboardCommand(), gcCommand(),
		serverCommand(), initCommand(), builderCommand(), runnerCommand(), distccdCommand(),
		awsCommand(), versionCommand())
	return root
}

func main() {
	// A crash (a panic in any goroutine, a fatal runtime error, SIGQUIT)
	// ends with SIGABRT, not the runtime's exit status 2, which here
	// promises that nothing was run.
	debug.SetTraceback("crash")
	go gcpace.Run(context.Background())
	stopProfile, err := cpuprof.Start()
	if err == nil {
		err = rootCommand().Execute()
		stopProfile()
	}
	if err == nil {
		return
	}
	code := 2
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(os.Stderr, "simswarm: "+msg)
	}
	os.Exit(code)
}

// campaignArg takes exactly one argument, a campaign id, and says so in
// words when it is missing or doubled (cobra's "accepts 1 arg(s),
// received 0" names neither the command nor what it wants).
func campaignArg(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return usageErr("%s needs the campaign id (16 hex digits, as simswarm run --detach and simswarm status show it)", cmd.Name())
	case len(args) > 1:
		return usageErr("%s takes one campaign id, not %d arguments (%q)", cmd.Name(), len(args), args)
	}
	return nil
}
