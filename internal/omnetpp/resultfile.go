package omnetpp

import (
	"bytes"
	"io"
	"strings"
)

// maxResultHeader bounds how much of a result file ResultRunNumber reads:
// .vec files can be hundreds of MB, and the run header is a few KiB.
const maxResultHeader = 64 << 10

// headerKeywords are the line kinds of a text result file's run header.
// "file" is the first line of a .vci (the size and mtime of its .vec).
var headerKeywords = map[string]bool{
	"version": true, "run": true, "attr": true, "itervar": true,
	"config": true, "par": true, "file": true,
}

// ResultRunNumber reads the header of an OMNeT++ text result file (.sca,
// .vec, .vci; format version 2 or 3) from r and returns the run number from
// its `attr runnumber N` line. Only the header is read: reading stops at the
// first line of another kind (the first vector, scalar or statistic) or
// after 64 KiB. A SQLite result file, or one without a run number, gives false.
func ResultRunNumber(r io.Reader) (int, bool) {
	data, err := io.ReadAll(io.LimitReader(r, maxResultHeader))
	if err != nil && len(data) == 0 {
		return 0, false
	}
	// A line cut by the limit or a read error could turn "12" into "1".
	if err != nil || len(data) == maxResultHeader {
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
			data = data[:i+1]
		} else {
			return 0, false
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		if !headerKeywords[fields[0]] {
			return 0, false
		}
		if len(fields) == 3 && fields[0] == "attr" && fields[1] == "runnumber" {
			n, err := parseRunNumber(strings.Trim(fields[2], `"`))
			if err != nil {
				return 0, false
			}
			return n, true
		}
	}
	return 0, false
}
