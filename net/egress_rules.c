/* The guest's kernel set-up for egress, spoken directly over netlink so
 * the static agent needs no nft or ip binary (and no loader or libraries
 * in the image): an nftables nat chain that redirects outbound TCP to the
 * proxy, and a policy route that gives TCP (and only TCP) a way out via
 * lo. Message formats: linux/netfilter/nf_tables.h, linux/fib_rules.h,
 * linux/rtnetlink.h. */
#include "net/egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/util.h"

#define MSG_BUF 4096
#define NEST_MAX 8

struct nlbuf {
	uint8_t b[MSG_BUF] __attribute__((aligned(4)));
	size_t len;
	struct nlmsghdr *msg;          /* the message being built */
	size_t nest[NEST_MAX];
	int depth;
	uint32_t seq, first_seq, nacks;
	bool overflow;
};

static void *put(struct nlbuf *nb, size_t len)
{
	size_t aligned = NLMSG_ALIGN(len);
	void *p;

	if (nb->len + aligned > sizeof(nb->b)) {
		nb->overflow = true;
		return NULL;
	}
	p = nb->b + nb->len;
	memset(p, 0, aligned);
	nb->len += aligned;
	if (nb->msg)
		nb->msg->nlmsg_len = (uint32_t)((uint8_t *)nb->b + nb->len - (uint8_t *)nb->msg);
	return p;
}

static void msg_begin(struct nlbuf *nb, uint16_t type, uint16_t flags, const void *hdr,
		      size_t hlen, bool acked)
{
	struct nlmsghdr *h;
	void *p;

	nb->msg = NULL;
	h = put(nb, NLMSG_HDRLEN);
	if (!h)
		return;
	nb->msg = h;
	h->nlmsg_len = NLMSG_HDRLEN;
	h->nlmsg_type = type;
	h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags | (acked ? NLM_F_ACK : 0));
	h->nlmsg_seq = ++nb->seq;
	if (acked)
		nb->nacks++;
	if ((p = put(nb, hlen)))
		memcpy(p, hdr, hlen);
}

static void attr(struct nlbuf *nb, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = put(nb, NLA_HDRLEN + len);

	if (!a)
		return;
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
}

static void attr_str(struct nlbuf *nb, uint16_t type, const char *s)
{
	attr(nb, type, s, strlen(s) + 1);
}

static void attr_be32(struct nlbuf *nb, uint16_t type, uint32_t v)
{
	v = htonl(v);
	attr(nb, type, &v, sizeof(v));
}

static void attr_u32(struct nlbuf *nb, uint16_t type, uint32_t v)
{
	attr(nb, type, &v, sizeof(v));
}

static void nest_begin(struct nlbuf *nb, uint16_t type)
{
	struct nlattr *a = put(nb, NLA_HDRLEN);

	if (!a || nb->depth == NEST_MAX) {
		nb->overflow = true;
		return;
	}
	a->nla_type = (uint16_t)(type | NLA_F_NESTED);
	nb->nest[nb->depth++] = (size_t)((uint8_t *)a - nb->b);
}

static void nest_end(struct nlbuf *nb)
{
	struct nlattr *a;

	if (nb->overflow || nb->depth == 0)
		return;
	a = (struct nlattr *)(nb->b + nb->nest[--nb->depth]);
	a->nla_len = (uint16_t)(nb->len - nb->nest[nb->depth]);
}

/* Sends the buffer and reads one ack per acked message; the first error
 * wins. ok_errno (e.g. EEXIST) counts as success. */
static int nl_exchange(int proto, struct nlbuf *nb, int ok_errno)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	uint8_t rx[8192] __attribute__((aligned(4)));
	int fd, r = 0;
	uint32_t acks = 0;

	if (nb->overflow)
		return -EMSGSIZE;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return -errno;
	if (sendto(fd, nb->b, nb->len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto out;
	}
	while (acks < nb->nacks) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 2000) <= 0) {
			r = r ? r : -ETIMEDOUT;
			break;
		}
		n = recv(fd, rx, sizeof(rx), 0);
		if (n < 0) {
			r = r ? r : -errno;
			break;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)rx; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			int e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;

			acks++;
			if (e && -e != ok_errno && r == 0)
				r = e;
		}
	}
out:
	close(fd);
	return r;
}

/* ---- nftables ---- */

static void nft_msg(struct nlbuf *nb, uint16_t type, uint16_t flags, uint8_t family)
{
	struct nfgenmsg g = { .nfgen_family = family, .version = NFNETLINK_V0 };

	msg_begin(nb, (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | type), flags, &g, sizeof(g), true);
}

static void batch(struct nlbuf *nb, uint16_t type)
{
	struct nfgenmsg g = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0,
			      .res_id = htons(NFNL_SUBSYS_NFTABLES) };

	msg_begin(nb, type, 0, &g, sizeof(g), false);
}

static void expr_begin(struct nlbuf *nb, const char *name)
{
	nest_begin(nb, NFTA_LIST_ELEM);
	attr_str(nb, NFTA_EXPR_NAME, name);
	nest_begin(nb, NFTA_EXPR_DATA);
}

static void expr_end(struct nlbuf *nb)
{
	nest_end(nb);
	nest_end(nb);
}

static void data_value(struct nlbuf *nb, uint16_t type, const void *v, size_t len)
{
	nest_begin(nb, type);
	attr(nb, NFTA_DATA_VALUE, v, len);
	nest_end(nb);
}

/* table ip sbx_egress {
 *     chain out {
 *         type nat hook output priority -100; policy accept;
 *         meta l4proto tcp ip daddr != 127.0.0.0/8 redirect to :PORT
 *     }
 * }
 * Created as "add table, delete table, add table..." in one batch, so a
 * restarted agent replaces its rules atomically whatever was there. */
int egress_rules_install(uint16_t proxy_port)
{
	static struct nlbuf nb;
	const uint8_t tcp = IPPROTO_TCP, loopnet = 127;
	uint16_t port = htons(proxy_port);
	const uint8_t fam = NFPROTO_IPV4;

	memset(&nb, 0, sizeof(nb));
	batch(&nb, NFNL_MSG_BATCH_BEGIN);
	nft_msg(&nb, NFT_MSG_NEWTABLE, NLM_F_CREATE, fam);
	attr_str(&nb, NFTA_TABLE_NAME, EGRESS_NFT_TABLE);
	nft_msg(&nb, NFT_MSG_DELTABLE, 0, fam);
	attr_str(&nb, NFTA_TABLE_NAME, EGRESS_NFT_TABLE);
	nft_msg(&nb, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, fam);
	attr_str(&nb, NFTA_TABLE_NAME, EGRESS_NFT_TABLE);

	nft_msg(&nb, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, fam);
	attr_str(&nb, NFTA_CHAIN_TABLE, EGRESS_NFT_TABLE);
	attr_str(&nb, NFTA_CHAIN_NAME, "out");
	nest_begin(&nb, NFTA_CHAIN_HOOK);
	attr_be32(&nb, NFTA_HOOK_HOOKNUM, NF_INET_LOCAL_OUT);
	attr_be32(&nb, NFTA_HOOK_PRIORITY, (uint32_t)-100); /* NF_IP_PRI_NAT_DST */
	nest_end(&nb);
	attr_be32(&nb, NFTA_CHAIN_POLICY, NF_ACCEPT);
	attr_str(&nb, NFTA_CHAIN_TYPE, "nat");

	nft_msg(&nb, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, fam);
	attr_str(&nb, NFTA_RULE_TABLE, EGRESS_NFT_TABLE);
	attr_str(&nb, NFTA_RULE_CHAIN, "out");
	nest_begin(&nb, NFTA_RULE_EXPRESSIONS);
	expr_begin(&nb, "meta");                   /* reg1 = meta l4proto */
	attr_be32(&nb, NFTA_META_DREG, NFT_REG_1);
	attr_be32(&nb, NFTA_META_KEY, NFT_META_L4PROTO);
	expr_end(&nb);
	expr_begin(&nb, "cmp");                    /* == tcp */
	attr_be32(&nb, NFTA_CMP_SREG, NFT_REG_1);
	attr_be32(&nb, NFTA_CMP_OP, NFT_CMP_EQ);
	data_value(&nb, NFTA_CMP_DATA, &tcp, 1);
	expr_end(&nb);
	expr_begin(&nb, "payload");                /* reg1 = first byte of ip daddr */
	attr_be32(&nb, NFTA_PAYLOAD_DREG, NFT_REG_1);
	attr_be32(&nb, NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
	attr_be32(&nb, NFTA_PAYLOAD_OFFSET, 16);
	attr_be32(&nb, NFTA_PAYLOAD_LEN, 1);
	expr_end(&nb);
	expr_begin(&nb, "cmp");                    /* != 127 */
	attr_be32(&nb, NFTA_CMP_SREG, NFT_REG_1);
	attr_be32(&nb, NFTA_CMP_OP, NFT_CMP_NEQ);
	data_value(&nb, NFTA_CMP_DATA, &loopnet, 1);
	expr_end(&nb);
	expr_begin(&nb, "immediate");              /* reg1 = port */
	attr_be32(&nb, NFTA_IMMEDIATE_DREG, NFT_REG_1);
	data_value(&nb, NFTA_IMMEDIATE_DATA, &port, sizeof(port));
	expr_end(&nb);
	expr_begin(&nb, "redir");                  /* redirect to :reg1 */
	attr_be32(&nb, NFTA_REDIR_REG_PROTO_MIN, NFT_REG_1);
	expr_end(&nb);
	nest_end(&nb);
	batch(&nb, NFNL_MSG_BATCH_END);
	return nl_exchange(NETLINK_NETFILTER, &nb, 0);
}

static void rule_begin(struct nlbuf *nb, const char *chain)
{
	nft_msg(nb, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, NFPROTO_IPV4);
	attr_str(nb, NFTA_RULE_TABLE, EGRESS_NFT_TABLE);
	attr_str(nb, NFTA_RULE_CHAIN, chain);
	nest_begin(nb, NFTA_RULE_EXPRESSIONS);
}

/* reg1 = len bytes of the IPv4 header at off */
static void load_ip(struct nlbuf *nb, uint32_t off, uint32_t len)
{
	expr_begin(nb, "payload");
	attr_be32(nb, NFTA_PAYLOAD_DREG, NFT_REG_1);
	attr_be32(nb, NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
	attr_be32(nb, NFTA_PAYLOAD_OFFSET, off);
	attr_be32(nb, NFTA_PAYLOAD_LEN, len);
	expr_end(nb);
}

static void cmp_eq(struct nlbuf *nb, const void *v, size_t len)
{
	expr_begin(nb, "cmp");
	attr_be32(nb, NFTA_CMP_SREG, NFT_REG_1);
	attr_be32(nb, NFTA_CMP_OP, NFT_CMP_EQ);
	data_value(nb, NFTA_CMP_DATA, v, len);
	expr_end(nb);
}

/* ... accept; the end of the rule. */
static void accept_end(struct nlbuf *nb)
{
	expr_begin(nb, "immediate");
	attr_be32(nb, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	nest_begin(nb, NFTA_IMMEDIATE_DATA);
	nest_begin(nb, NFTA_DATA_VERDICT);
	attr_be32(nb, NFTA_VERDICT_CODE, NF_ACCEPT);
	nest_end(nb);
	nest_end(nb);
	expr_end(nb);
	nest_end(nb);
}

/* Added to the table of egress_rules_install, as a batch of its own (the
 * redirect works without it):
 *     chain refuse {
 *         type filter hook output priority -150; policy accept;
 *         ip daddr 198.18.0.0/15 accept       (the DNS stub's names)
 *         ip daddr 127.0.0.0/8 accept
 *         ip daddr A accept                   (each address the list names)
 *         meta l4proto tcp reject with tcp reset
 *     }
 * Before the nat chain (-100) so that it sees the original destination.
 * A TCP reset, not ICMP "administratively prohibited": the kernel sends
 * no ICMP error for a packet of its own refused on the output hook (the
 * connection would wait for its timeout), while the reset reaches the
 * connecting socket at once (ECONNREFUSED). */
int egress_refuse_install(const uint32_t *addrs, size_t n)
{
	static struct nlbuf nb;
	const uint8_t tcp = IPPROTO_TCP, loopnet = 127;
	const uint32_t synth = htonl(0xc6120000), synth_mask = htonl(0xfffe0000), zero = 0;
	int r;

	memset(&nb, 0, sizeof(nb));
	batch(&nb, NFNL_MSG_BATCH_BEGIN);
	nft_msg(&nb, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, NFPROTO_IPV4);
	attr_str(&nb, NFTA_CHAIN_TABLE, EGRESS_NFT_TABLE);
	attr_str(&nb, NFTA_CHAIN_NAME, "refuse");
	nest_begin(&nb, NFTA_CHAIN_HOOK);
	attr_be32(&nb, NFTA_HOOK_HOOKNUM, NF_INET_LOCAL_OUT);
	attr_be32(&nb, NFTA_HOOK_PRIORITY, (uint32_t)-150);
	nest_end(&nb);
	attr_be32(&nb, NFTA_CHAIN_POLICY, NF_ACCEPT);
	attr_str(&nb, NFTA_CHAIN_TYPE, "filter");

	rule_begin(&nb, "refuse");
	load_ip(&nb, 16, 4);
	expr_begin(&nb, "bitwise");                /* reg1 &= 255.254.0.0 */
	attr_be32(&nb, NFTA_BITWISE_SREG, NFT_REG_1);
	attr_be32(&nb, NFTA_BITWISE_DREG, NFT_REG_1);
	attr_be32(&nb, NFTA_BITWISE_LEN, 4);
	data_value(&nb, NFTA_BITWISE_MASK, &synth_mask, 4);
	data_value(&nb, NFTA_BITWISE_XOR, &zero, 4);
	expr_end(&nb);
	cmp_eq(&nb, &synth, 4);
	accept_end(&nb);

	rule_begin(&nb, "refuse");
	load_ip(&nb, 16, 1);
	cmp_eq(&nb, &loopnet, 1);
	accept_end(&nb);

	/* About 200 bytes a rule: the addresses go in batches of 12, and
	 * the reject comes last, so that until then the chain refuses
	 * nothing (a failure leaves egress as it was without it). */
	for (size_t i = 0; i <= n; i++) {
		if (i == n || (i > 0 && i % 12 == 0)) {
			batch(&nb, NFNL_MSG_BATCH_END);
			if ((r = nl_exchange(NETLINK_NETFILTER, &nb, 0)) < 0)
				return r;
			memset(&nb, 0, sizeof(nb));
			batch(&nb, NFNL_MSG_BATCH_BEGIN);
		}
		if (i == n)
			break;
		rule_begin(&nb, "refuse");
		load_ip(&nb, 16, 4);
		cmp_eq(&nb, &addrs[i], 4);
		accept_end(&nb);
	}

	rule_begin(&nb, "refuse");
	expr_begin(&nb, "meta");
	attr_be32(&nb, NFTA_META_DREG, NFT_REG_1);
	attr_be32(&nb, NFTA_META_KEY, NFT_META_L4PROTO);
	expr_end(&nb);
	cmp_eq(&nb, &tcp, 1);
	expr_begin(&nb, "reject");
	attr_be32(&nb, NFTA_REJECT_TYPE, NFT_REJECT_TCP_RST);
	expr_end(&nb);
	nest_end(&nb);
	batch(&nb, NFNL_MSG_BATCH_END);
	return nl_exchange(NETLINK_NETFILTER, &nb, 0);
}

/* ---- routing ---- */

/* ip rule add pref 100 ipproto tcp lookup 99
 * ip route replace default dev lo src 127.0.0.1 table 99
 * UDP and everything else still finds no route (ENETUNREACH at once). */
int egress_route_install(void)
{
	static struct nlbuf nb;
	struct fib_rule_hdr frh = { .family = AF_INET, .action = FR_ACT_TO_TBL };
	struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_table = RT_TABLE_UNSPEC,
			     .rtm_protocol = RTPROT_BOOT, .rtm_scope = RT_SCOPE_LINK,
			     .rtm_type = RTN_UNICAST };
	uint32_t src = htonl(INADDR_LOOPBACK), lo = if_nametoindex("lo");
	uint8_t proto = IPPROTO_TCP;
	int r;

	if (!lo)
		return -ENODEV;
	memset(&nb, 0, sizeof(nb));
	msg_begin(&nb, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rtm, sizeof(rtm), true);
	attr_u32(&nb, RTA_TABLE, EGRESS_ROUTE_TABLE);
	attr_u32(&nb, RTA_OIF, lo);
	attr(&nb, RTA_PREFSRC, &src, sizeof(src));
	if ((r = nl_exchange(NETLINK_ROUTE, &nb, 0)) < 0)
		return r;
	memset(&nb, 0, sizeof(nb));
	msg_begin(&nb, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, &frh, sizeof(frh), true);
	attr_u32(&nb, FRA_PRIORITY, EGRESS_RULE_PREF);
	attr_u32(&nb, FRA_TABLE, EGRESS_ROUTE_TABLE);
	attr(&nb, FRA_IP_PROTO, &proto, 1);
	return nl_exchange(NETLINK_ROUTE, &nb, EEXIST);
}
