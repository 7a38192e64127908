package omnetpp

import (
	"reflect"
	"testing"
)

func TestDisabledSourceDirs(t *testing.T) {
	defs := []byte(`<features cppSourceRoots = "src" definesFile = "src/inet/features.h">
    <feature id = "Aodv" name = "AODV" initiallyEnabled = "true"
        nedPackages = "
                       inet.node.aodv
                       inet.routing.aodv
                      " />
    <feature id = "Tcp" initiallyEnabled = "true" nedPackages = "inet.transportlayer.tcp" />
    <feature id = "Extra" initiallyEnabled = "false" nedPackages = "inet.extra" />
</features>`)
	state := []byte(`<?xml version="1.0" ?>
<featurestates>
    <feature id="Aodv" enabled="false"/>
    <feature id="Tcp" enabled="true"/>
</featurestates>`)
	want := []string{"src/inet/node/aodv", "src/inet/routing/aodv", "src/inet/extra"}
	if got := DisabledSourceDirs(defs, state); !reflect.DeepEqual(got, want) {
		t.Errorf("with a state file: %q, want %q", got, want)
	}
	if got := DisabledSourceDirs(defs, nil); !reflect.DeepEqual(got, []string{"src/inet/extra"}) {
		t.Errorf("without a state file (initiallyEnabled): %q", got)
	}
	if got := DisabledSourceDirs([]byte("not xml"), state); got != nil {
		t.Errorf("unreadable definitions: %q", got)
	}
}
