package respond

import "strings"

// PolicyDocument is an IAM policy document.
type PolicyDocument struct {
	Version   string            `json:"Version"`
	Statement []PolicyStatement `json:"Statement"`
}

// PolicyStatement is one statement of a policy.
type PolicyStatement struct {
	Sid      string   `json:"Sid"`
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

// IAMStatements returns the least-privilege statements the configured
// blockers need, with resource ARNs where AWS supports resource-level
// permissions (network ACL entries, IP sets). account may be "" (any).
// The Describe calls do not support resource-level permissions, so they
// take "*".
func IAMStatements(cfg *Config, account string) []PolicyStatement {
	if account == "" {
		account = "*"
	}
	var out []PolicyStatement
	if n := cfg.NACL; n != nil {
		region := orStar(n.Region)
		describe := []string{"ec2:DescribeNetworkAcls"}
		if len(n.NetworkACLs) == 0 {
			// The attacked subnet's ACL is found from the interface.
			describe = append(describe, "ec2:DescribeNetworkInterfaces")
		}
		out = append(out, PolicyStatement{Sid: "FlowguardDescribeNetworkAcls", Effect: "Allow", Action: describe, Resource: []string{"*"}})
		var res []string
		for _, id := range n.NetworkACLs {
			res = append(res, "arn:aws:ec2:"+region+":"+account+":network-acl/"+id)
		}
		if len(res) == 0 {
			res = []string{"arn:aws:ec2:" + region + ":" + account + ":network-acl/*"}
		}
		out = append(out, PolicyStatement{Sid: "FlowguardNetworkAclEntries", Effect: "Allow",
			Action: []string{"ec2:CreateNetworkAclEntry", "ec2:DeleteNetworkAclEntry"}, Resource: res})
	}
	if w := cfg.WAFv2; w != nil {
		// CLOUDFRONT-scope sets live in us-east-1 under "global".
		region, kind := orStar(w.Region), "regional"
		if w.Scope == "CLOUDFRONT" {
			region, kind = "us-east-1", "global"
		}
		var res []string
		for _, s := range []*IPSetRef{w.IPv4Set, w.IPv6Set} {
			if s != nil {
				res = append(res, "arn:aws:wafv2:"+region+":"+account+":"+kind+"/ipset/"+s.Name+"/"+s.ID)
			}
		}
		out = append(out, PolicyStatement{Sid: "FlowguardWAFv2IPSets", Effect: "Allow",
			Action: []string{"wafv2:GetIPSet", "wafv2:UpdateIPSet"}, Resource: res})
	}
	return out
}

func orStar(s string) string {
	if strings.TrimSpace(s) == "" {
		return "*"
	}
	return s
}
