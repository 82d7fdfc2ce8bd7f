import { describe, expect, it } from "vitest";
import { isPublicHost, parseIpv4, parseIpv6 } from "./public-host.js";

describe("parseIpv4", () => {
  it.each([
    ["127.0.0.1", 0x7f000001],
    ["2130706433", 0x7f000001],
    ["0x7f000001", 0x7f000001],
    ["0177.0.0.1", 0x7f000001],
    ["127.1", 0x7f000001],
    ["0x7f.0.0.1", 0x7f000001],
    ["10.0.258", 0x0a000102],
  ])("%s", (text, value) => expect(parseIpv4(text)).toBe(value));

  it.each(["256.0.0.1", "1.2.3.4.5", "example.com", "1..2", "4294967296", "08.0.0.1"])("rejects %s", (text) => {
    expect(parseIpv4(text)).toBeNull();
  });
});

describe("parseIpv6", () => {
  it("expands :: and embedded IPv4", () => {
    expect(parseIpv6("::1")).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIpv6("::ffff:127.0.0.1")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1]);
    expect(parseIpv6("2606:4700::6810:85e5")).toEqual([0x2606, 0x4700, 0, 0, 0, 0, 0x6810, 0x85e5]);
    expect(parseIpv6("1:2:3:4:5:6:7:8")).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
  it.each(["1::2::3", "fe80::1%25eth0", "12345::", "1:2:3:4:5:6:7", "::ffff:999.0.0.1"])("rejects %s", (text) => {
    expect(parseIpv6(text)).toBeNull();
  });
});

describe("isPublicHost", () => {
  it.each([
    "localhost",
    "LOCALHOST.",
    "api.localhost",
    "printer.local",
    "metadata.google.internal",
    "intranet",
    "127.0.0.1",
    "127.255.255.254",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "0.0.0.0",
    "0",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.100.100.200",
    "192.0.0.192",
    "224.0.0.1",
    "255.255.255.255",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::ffff:169.254.169.254]",
    "[fe80::1]",
    "[fd00:ec2::254]",
    "[fc00::1]",
    "[ff02::1]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:7f00:1::]",
    "[2001:db8::1]",
    "[::127.0.0.1]",
  ])("refuses %s", (host) => expect(isPublicHost(host)).toBe(false));

  it.each([
    "example.com",
    "images.example.co.uk",
    "8.8.8.8",
    "1.1.1.1",
    "[2606:4700::6810:85e5]",
    "[::ffff:8.8.8.8]",
    "172.32.0.1",
  ])("allows %s", (host) => expect(isPublicHost(host)).toBe(true));
});
