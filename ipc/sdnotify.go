package ipc

import (
	"net"
	"os"
)

// SdNotify tells systemd (or whoever set NOTIFY_SOCKET) about the service's
// state: READY=1, RELOADING=1, STOPPING=1. Without NOTIFY_SOCKET it does
// nothing.
func SdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
