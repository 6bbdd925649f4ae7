// Package newsletter tells the machines that fetch newsletter links and
// open pixels (mail privacy proxies, link scanners, prefetchers) from
// people. The links themselves are made and checked by internal/linksign,
// which the query side's dashboard shares.
package newsletter
