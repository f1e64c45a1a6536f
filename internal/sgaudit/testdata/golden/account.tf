# flowguard sg-audit: review before applying.

# broader than used: delete the rule sg-0web ingress tcp 443 from ::/0 and add:
resource "aws_vpc_security_group_ingress_rule" "sg_0web_ingress_tcp_443_2001_db8__5_128" {
  security_group_id = "sg-0web"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv6         = "2001:db8::5/128"
  description       = "narrowed by flowguard sg-audit from ::/0"
}

# unused: delete the rule sg-0web ingress tcp 32768-65535 from 0.0.0.0/0

# broader than used: delete the rule sg-0web ingress icmp type 8 any code from 0.0.0.0/0 and add:
resource "aws_vpc_security_group_ingress_rule" "sg_0web_ingress_icmp_type_8_any_code_8_8_4_4_32" {
  security_group_id = "sg-0web"
  ip_protocol       = "icmp"
  from_port         = 8
  to_port           = -1
  cidr_ipv4         = "8.8.4.4/32"
  description       = "narrowed by flowguard sg-audit from 0.0.0.0/0"
}

# broader than used: delete the rule sg-0web egress -1 all from 0.0.0.0/0 and add:
resource "aws_vpc_security_group_egress_rule" "sg_0web_egress__1_all_10_0_1_20_32" {
  security_group_id = "sg-0web"
  ip_protocol       = "-1"
  cidr_ipv4         = "10.0.1.20/32"
  description       = "narrowed by flowguard sg-audit from 0.0.0.0/0"
}
resource "aws_vpc_security_group_egress_rule" "sg_0web_egress__1_all_151_101_1_1_32" {
  security_group_id = "sg-0web"
  ip_protocol       = "-1"
  cidr_ipv4         = "151.101.1.1/32"
  description       = "narrowed by flowguard sg-audit from 0.0.0.0/0"
}

# unused: delete the rule sg-0web egress -1 all from ::/0

# broader than used: delete the rule sg-1admin ingress tcp 22 from 0.0.0.0/0 and add:
resource "aws_vpc_security_group_ingress_rule" "sg_1admin_ingress_tcp_22_203_0_113_0_28" {
  security_group_id = "sg-1admin"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = "203.0.113.0/28"
  description       = "narrowed by flowguard sg-audit from 0.0.0.0/0"
}

# unused: delete the rule sg-2app ingress tcp 9090 from 10.0.0.0/16

# unused: delete the rule sg-3db ingress tcp 5432 from 2600:1f18:abc::/56

# unused: delete the rule sg-5orphan ingress tcp 21 from 0.0.0.0/0
