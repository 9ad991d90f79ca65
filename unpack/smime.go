package unpack

import (
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// S/MIME opaque-signed mail (application/pkcs7-mime, smime-type
// signed-data): the signed entity lies inside the CMS structure, and a
// mail reader shows it. The encapsulated content is taken out
// (ContentInfo, SignedData, EncapsulatedContentInfo, its eContent, in one
// OCTET STRING or in several) and walked as the entity it is.

var oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}

// smimeContent is the entity a CMS SignedData carries (ok false: d is no
// SignedData, or carries none).
func smimeContent(d []byte) ([]byte, bool) {
	in := cryptobyte.String(d)
	var ci, body cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidSignedData) ||
		!ci.ReadASN1(&body, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, false
	}
	var sd, digests, encap, eTagged cryptobyte.String
	var version int
	var eType asn1.ObjectIdentifier
	if !body.ReadASN1(&sd, cbasn1.SEQUENCE) || !sd.ReadASN1Integer(&version) || !sd.ReadASN1(&digests, cbasn1.SET) ||
		!sd.ReadASN1(&encap, cbasn1.SEQUENCE) || !encap.ReadASN1ObjectIdentifier(&eType) ||
		!encap.ReadASN1(&eTagged, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, false
	}
	return octets(eTagged)
}

// octets reads an OCTET STRING, primitive or made of pieces.
func octets(s cryptobyte.String) ([]byte, bool) {
	var out cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&out, &tag) {
		return nil, false
	}
	switch tag {
	case cbasn1.OCTET_STRING:
		return out, true
	case cbasn1.OCTET_STRING | 0x20: // constructed: pieces, one after another
		var all []byte
		for !out.Empty() {
			p, ok := octets(out)
			if !ok {
				return all, len(all) > 0
			}
			all = append(all, p...)
			var skip cryptobyte.String
			out.ReadAnyASN1(&skip, &tag) // past the piece read
		}
		return all, true
	}
	return nil, false
}
