module github.com/fsigkd/fsigkd

go 1.26.8

require (
	github.com/andybalholm/brotli v1.2.0
	github.com/emersion/go-smtp v0.25.1
	github.com/jlaffaye/ftp v0.2.4
	github.com/klauspost/compress v1.20.4
	go.uber.org/zap v1.28.0
	golang.org/x/sys v0.50.0
	gopkg.in/ini.v1 v1.68.0
)

require (
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6 // indirect
	go.uber.org/multierr v1.10.0 // indirect
)
