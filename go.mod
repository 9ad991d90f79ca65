module github.com/fsigkd/fsigkd

go 1.26.8

require gopkg.in/ini.v1 v1.68.0
