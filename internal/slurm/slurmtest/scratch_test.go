package slurmtest

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestScratch(t *testing.T) {
	c := Start(t, Options{Conf: []string{"MaxJobCount=4"}})
	sb := func(args ...string) {
		cmd := exec.Command("sbatch", args...)
		cmd.Env = c.Env
		cmd.Stdin = strings.NewReader("#!/bin/sh\nsleep 30\n")
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("sbatch %v: %v %s (%s)", args, err, out, time.Since(t0))
	}
	sb("--parsable", "--output=/dev/null", "--array=0-2%3")
	sb("--parsable", "--output=/dev/null", "--array=0-2%3")
	sb("--test-only", "--output=/dev/null")
	sb("--parsable", "--output=/dev/null")
	sb("--parsable", "--output=/dev/null")
	out, _ := c.Command("scontrol", "show", "config")
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Max") {
			t.Log(l)
		}
	}
	out, err := c.Command("sacctmgr", "-n", "-P", "show", "assoc", "where", "user=root", "format=MaxSubmit,GrpSubmit")
	t.Logf("sacctmgr: %v %s", err, out)
}
