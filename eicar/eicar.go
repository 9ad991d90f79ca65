// Package eicar gives the EICAR anti-virus test file, the harmless string
// every engine reports as a virus. It is put together at run time so that
// no source or binary of fsigkd holds it whole: an engine scanning our own
// files (ClamAV's EICAR signature matches at any offset) must not flag them.
package eicar

// String is the 68-byte EICAR test file.
var String = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS" + "-TEST-FILE!$H+H*"

// GTUBE is the anti-spam test string (the spam engines' equivalent).
var GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*" + "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
