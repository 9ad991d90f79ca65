#!/bin/sh
# fsigkd: the same interception with iptables, and the policy routing that
# TPROXY needs whichever firewall is used. As 'fsigkd rules' prints it.
set -e
iptables -t mangle -N FSIGKD_DIVERT
iptables -t mangle -A FSIGKD_DIVERT -j MARK --set-mark 0x1
iptables -t mangle -A FSIGKD_DIVERT -j ACCEPT
iptables -t mangle -A PREROUTING -m mark --mark 0x2 -j ACCEPT
iptables -t mangle -A PREROUTING -p tcp -m socket --transparent -j FSIGKD_DIVERT
iptables -t mangle -A PREROUTING -p tcp --dport 80 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 9080
iptables -t mangle -A PREROUTING -p tcp --dport 25 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 9025
iptables -t mangle -A PREROUTING -p tcp --dport 21 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 9021
iptables -t mangle -A PREROUTING -p tcp --dport 110 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 9110
ip rule add fwmark 0x1 lookup 100
ip route add local 0.0.0.0/0 dev lo table 100
ip -6 rule add fwmark 0x1 lookup 100
ip -6 route add local ::/0 dev lo table 100
