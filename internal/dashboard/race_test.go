//go:build race

package dashboard

// raceEnabled: the race detector slows the engine and the index tenfold,
// so timing limits do not hold.
const raceEnabled = true
