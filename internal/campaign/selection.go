package campaign

import (
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/sweep"
)

// selectTemplate applies Options.Repeat and Options.Runs to a template
// command. The selection travels as the command's Filter, which is part
// of the campaign's id but not of its runs' keys, exactly as an OMNeT++
// -r is: a run selected in one round is the same run in the next.
func (o Options) selectTemplate(c *simswarm.Command) {
	if c.Kind != simswarm.KindTemplate {
		return
	}
	if o.Repeat > 0 {
		c.Repeat = o.Repeat
	}
	if o.Runs != nil {
		var in []int
		n := sweep.Count(*c)
		for _, r := range o.Runs {
			if r >= 0 && r < n {
				in = append(in, r)
			}
		}
		c.Filter = omnetpp.RunNumberArg(in)
		if c.Filter == "" {
			c.Filter = "-" // selects nothing: the empty run list is refused as such
		}
	}
}

// templateSelection is the run numbers a template's Filter selects, sorted;
// ok is false when it has none (every run).
func templateSelection(c simswarm.Command) (runs []int, ok bool) {
	if c.Filter == "" {
		return nil, false
	}
	runs, _ = omnetpp.PlainRunNumbers(c.Filter)
	return runs, true
}
