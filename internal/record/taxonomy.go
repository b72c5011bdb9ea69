package record

import (
	"strconv"
	"strings"
)

// Category is the class of an attack.
type Category uint8

const (
	// CategoryUnknown is an attack name the taxonomy lacks, or a record a
	// detector could not place in any known class.
	CategoryUnknown Category = iota
	CategoryNormal
	CategoryDoS
	CategoryProbe
	CategoryR2L
	CategoryU2R
	// NumCategories is the number of categories, CategoryUnknown included.
	NumCategories = int(CategoryU2R) + 1
)

var categoryNames = [...]string{"unknown", "normal", "dos", "probe", "r2l", "u2r"}

// String returns the category's lower-case name.
func (c Category) String() string {
	if int(c) < len(categoryNames) {
		return categoryNames[c]
	}
	return "Category(" + strconv.Itoa(int(c)) + ")"
}

// ParseCategory returns the category with the given name.
func ParseCategory(s string) (Category, bool) {
	for i, n := range categoryNames {
		if n == s {
			return Category(i), true
		}
	}
	return CategoryUnknown, false
}

// MarshalText implements encoding.TextMarshaler.
func (c Category) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Categories lists every category in a fixed order, CategoryUnknown last.
var Categories = []Category{CategoryNormal, CategoryDoS, CategoryProbe, CategoryR2L, CategoryU2R, CategoryUnknown}

// attackCategory maps the 39 attack names of KDD'99 (22 in training, 17 only
// in the test sets) to their category. It is the content of
// data/kddcup99_attack_categories.txt.gz; a test checks they agree.
var attackCategory = map[string]Category{
	"apache2": CategoryDoS, "back": CategoryDoS, "land": CategoryDoS,
	"mailbomb": CategoryDoS, "neptune": CategoryDoS, "pod": CategoryDoS,
	"processtable": CategoryDoS, "smurf": CategoryDoS, "teardrop": CategoryDoS,
	"udpstorm": CategoryDoS,
	"ipsweep":  CategoryProbe, "mscan": CategoryProbe, "nmap": CategoryProbe,
	"portsweep": CategoryProbe, "saint": CategoryProbe, "satan": CategoryProbe,
	"ftp_write": CategoryR2L, "guess_passwd": CategoryR2L, "imap": CategoryR2L,
	"multihop": CategoryR2L, "named": CategoryR2L, "phf": CategoryR2L,
	"sendmail": CategoryR2L, "snmpgetattack": CategoryR2L, "snmpguess": CategoryR2L,
	"spy": CategoryR2L, "warezclient": CategoryR2L, "warezmaster": CategoryR2L,
	"worm": CategoryR2L, "xlock": CategoryR2L, "xsnoop": CategoryR2L,
	"buffer_overflow": CategoryU2R, "httptunnel": CategoryU2R, "loadmodule": CategoryU2R,
	"perl": CategoryU2R, "ps": CategoryU2R, "rootkit": CategoryU2R,
	"sqlattack": CategoryU2R, "xterm": CategoryU2R,
}

// CategoryOf returns the category of a label: CategoryNormal for "normal",
// the attack's category for one of the 39 KDD'99 attacks, and
// CategoryUnknown otherwise. A trailing dot is ignored.
func CategoryOf(label string) Category {
	label = strings.TrimSuffix(label, ".")
	if label == "normal" {
		return CategoryNormal
	}
	if c, ok := attackCategory[label]; ok {
		return c
	}
	return CategoryUnknown
}
