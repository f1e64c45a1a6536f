#!/bin/sh
# flowguard sg-audit: review before running.

# sg-0web ingress tcp 443 from ::/0: 1 source seen, all within 1 narrow prefix: replace ::/0 with 2001:db8::5/128
aws ec2 authorize-security-group-ingress --group-id sg-0web --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","Ipv6Ranges":[{"CidrIpv6":"2001:db8::5/128"}],"ToPort":443}]'
aws ec2 revoke-security-group-ingress --group-id sg-0web --ip-permissions '[{"FromPort":443,"IpProtocol":"tcp","Ipv6Ranges":[{"CidrIpv6":"::/0"}],"ToPort":443}]'

# sg-0web ingress tcp 32768-65535 from 0.0.0.0/0: unused (no accepted flow started through it in 8d8h of logs: revoke)
aws ec2 revoke-security-group-ingress --group-id sg-0web --ip-permissions '[{"FromPort":32768,"IpProtocol":"tcp","IpRanges":[{"CidrIp":"0.0.0.0/0"}],"ToPort":65535}]'

# sg-0web ingress icmp type 8 any code from 0.0.0.0/0: 1 source seen, all within 1 narrow prefix: replace 0.0.0.0/0 with 8.8.4.4/32
aws ec2 authorize-security-group-ingress --group-id sg-0web --ip-permissions '[{"FromPort":8,"IpProtocol":"icmp","IpRanges":[{"CidrIp":"8.8.4.4/32"}],"ToPort":-1}]'
aws ec2 revoke-security-group-ingress --group-id sg-0web --ip-permissions '[{"FromPort":8,"IpProtocol":"icmp","IpRanges":[{"CidrIp":"0.0.0.0/0"}],"ToPort":-1}]'

# sg-0web egress -1 all from 0.0.0.0/0: 2 destinations seen, all within 2 narrow prefixes: replace 0.0.0.0/0 with 10.0.1.20/32, 151.101.1.1/32
aws ec2 authorize-security-group-egress --group-id sg-0web --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"10.0.1.20/32"}]}]'
aws ec2 authorize-security-group-egress --group-id sg-0web --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"151.101.1.1/32"}]}]'
aws ec2 revoke-security-group-egress --group-id sg-0web --ip-permissions '[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]'

# sg-0web egress -1 all from ::/0: unused (no accepted flow started through it in 8d8h of logs: revoke)
aws ec2 revoke-security-group-egress --group-id sg-0web --ip-permissions '[{"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'

# sg-1admin ingress tcp 22 from 0.0.0.0/0: 2 sources seen, all within 1 narrow prefix: replace 0.0.0.0/0 with 203.0.113.0/28
aws ec2 authorize-security-group-ingress --group-id sg-1admin --ip-permissions '[{"FromPort":22,"IpProtocol":"tcp","IpRanges":[{"CidrIp":"203.0.113.0/28"}],"ToPort":22}]'
aws ec2 revoke-security-group-ingress --group-id sg-1admin --ip-permissions '[{"FromPort":22,"IpProtocol":"tcp","IpRanges":[{"CidrIp":"0.0.0.0/0"}],"ToPort":22}]'

# sg-2app ingress tcp 9090 from 10.0.0.0/16: unused (no accepted flow started through it in 8d8h of logs: revoke)
aws ec2 revoke-security-group-ingress --group-id sg-2app --ip-permissions '[{"FromPort":9090,"IpProtocol":"tcp","IpRanges":[{"CidrIp":"10.0.0.0/16"}],"ToPort":9090}]'

# sg-3db ingress tcp 5432 from 2600:1f18:abc::/56: unused (no accepted flow started through it in 8d8h of logs: revoke)
aws ec2 revoke-security-group-ingress --group-id sg-3db --ip-permissions '[{"FromPort":5432,"IpProtocol":"tcp","Ipv6Ranges":[{"CidrIpv6":"2600:1f18:abc::/56"}],"ToPort":5432}]'

# sg-5orphan ingress tcp 21 from 0.0.0.0/0: unused (the group is attached to no interface)
aws ec2 revoke-security-group-ingress --group-id sg-5orphan --ip-permissions '[{"FromPort":21,"IpProtocol":"tcp","IpRanges":[{"CidrIp":"0.0.0.0/0"}],"ToPort":21}]'
