// Package supervisor is fsigkd's process model: one master and one worker
// process per service.
//
// The master loads and checks the settings, runs the start-up checks
// (package preflight), binds every enabled service's listener with a listen
// backlog (listen_backlog while a slot is free, 5 when all are busy),
// creates its System V semaphore set, and starts a worker by re-executing
// its own binary with the listener, the checked settings and a readiness
// pipe handed over (package ipc holds that plumbing, the state and pid
// files and the notify socket; this package holds the policy).
// It watches the workers: one that ends without being asked to is logged
// (M17, M18 when it dumped core, M19) and started again at once while the
// master keeps the listener open, so clients queue in the backlog instead of
// being refused; one that keeps dying is restarted after a doubling delay
// capped by restart_max_delay. SIGHUP reloads (the new settings are checked,
// new workers started, and only when they serve are the old ones drained; a
// bad file keeps the running setup), SIGTERM and SIGINT drain and stop,
// SIGUSR1 reopens the logs. Readiness, reloads and stops are told to systemd
// over NOTIFY_SOCKET when it is set.
//
// A worker turns its inherited listener into a slots.Listener and hands it
// to the service's Serve; the services know nothing of processes,
// semaphores or signals. The command line is cmd/fsigkd's; it calls Run,
// Worker and Status.
package supervisor
