package omnetpp

import (
	"encoding/xml"
	"path"
	"strings"
)

// DisabledSourceDirs reads a project's feature definitions (.oppfeatures)
// and the user's choices (.oppfeaturestate, nil when absent) and returns
// the source directories of the disabled features, relative to the
// project's root in slash form: what `opp_featuretool options -f -l`
// excludes with -X (a feature's NED packages under each C++ source root;
// INET's inet.routing.aodv is src/inet/routing/aodv). A feature the state
// file does not name is as initiallyEnabled says.
func DisabledSourceDirs(features, state []byte) []string {
	var defs struct {
		Roots    string `xml:"cppSourceRoots,attr"`
		Features []struct {
			ID       string `xml:"id,attr"`
			Initial  string `xml:"initiallyEnabled,attr"`
			Packages string `xml:"nedPackages,attr"`
		} `xml:"feature"`
	}
	if xml.Unmarshal(features, &defs) != nil {
		return nil
	}
	var st struct {
		Features []struct {
			ID      string `xml:"id,attr"`
			Enabled string `xml:"enabled,attr"`
		} `xml:"feature"`
	}
	enabled := map[string]bool{}
	if state != nil && xml.Unmarshal(state, &st) == nil {
		for _, f := range st.Features {
			enabled[f.ID] = f.Enabled != "false"
		}
	}
	roots := strings.Fields(defs.Roots)
	if len(roots) == 0 {
		roots = []string{"."}
	}
	var out []string
	for _, f := range defs.Features {
		on, named := enabled[f.ID]
		if !named {
			on = f.Initial != "false"
		}
		if on {
			continue
		}
		for _, pkg := range strings.Fields(f.Packages) {
			for _, r := range roots {
				out = append(out, path.Join(r, strings.ReplaceAll(pkg, ".", "/")))
			}
		}
	}
	return out
}
