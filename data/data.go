// Package data embeds the NSL-KDD training files shipped with netsentinel,
// so that the binary runs its demo with no files beside it. The other data
// files in this directory (KDD'99 10%, the attack taxonomy, the feature
// names) are read from disk by tests and benchmarks.
package data

import _ "embed"

// NSLKDDTrain is data/KDDTrain+.txt.gz: NSL-KDD's training set, 125,973
// gzipped CSV lines (41 features, label, difficulty).
//
//go:embed KDDTrain+.txt.gz
var NSLKDDTrain []byte

// NSLKDDTrain20 is data/KDDTrain+_20Percent.txt.gz: the first 25,192 lines
// of NSLKDDTrain.
//
//go:embed KDDTrain+_20Percent.txt.gz
var NSLKDDTrain20 []byte

// NSLKDDTrain20Rows is the number of lines in NSLKDDTrain20.
const NSLKDDTrain20Rows = 25192
