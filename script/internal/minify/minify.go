// Package minify turns the tracker's readable source into the bytes sites
// download. It is its own package so that both the go:generate program and
// the staleness test in package script run exactly the same build, while the
// turf binary itself never links esbuild.
package minify

import (
	"fmt"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Minify returns the minified tracker for src. The output depends only on src
// and the pinned esbuild version, so regenerating is reproducible.
func Minify(src []byte) ([]byte, error) {
	res := api.Transform(string(src), api.TransformOptions{
		Loader:            api.LoaderJS,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		// ES2017 keeps the output plain for older Safari and embedded
		// browsers; the source uses nothing newer, so this lowers nothing.
		Target: api.ES2017,
		// Non-ASCII stays escaped, so the bytes do not depend on a charset
		// header being honoured.
		Charset:       api.CharsetASCII,
		LegalComments: api.LegalCommentsNone,
		Sourcefile:    "turf.js",
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, fmt.Errorf("cannot minify the tracker: %s", strings.Join(msgs, "\n"))
	}
	if len(res.Warnings) > 0 {
		// A warning from esbuild (a duplicate key, a suspicious comparison) is
		// almost always a bug in a script this small: fail instead of shipping it.
		msgs := api.FormatMessages(res.Warnings, api.FormatMessagesOptions{Kind: api.WarningMessage})
		return nil, fmt.Errorf("esbuild warns about the tracker: %s", strings.Join(msgs, "\n"))
	}
	return res.Code, nil
}
