#!/usr/bin/env python3
"""The demo's data set and questions, over each node's HTTP API.

A small district shaped by the figures in ../shared/DOMAIN.md (scaled down):
per community a zone with 8 residential grids and micro grids below (about
1,800 members, 17 compounds, 15 resident units, 20 posts), lists of needs,
resources, services, projects (some urgent), problems (most resolved, some
escalated to the street) and micro-wishes; whistles answered across levels;
two-way agreements signed by both parties; claims.

  demo_data.py NODES.json load      write the data set
  demo_data.py NODES.json cross     acts across units once the data spread
  demo_data.py NODES.json report    print the district's merged answers

NODES.json: {"name": {"api": "http://127.0.0.1:PORT", "token": "...", "unit": "..."}}
"""
import json
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

nodes = json.load(open(sys.argv[1]))
rng = random.Random(2020)


def call(node, method, path, body=None):
    n = nodes[node]
    data = None if body is None else json.dumps(body).encode()
    path = urllib.parse.quote(path, safe="/?=&:.,%-_")
    req = urllib.request.Request(n["api"] + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + n["token"])
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{node} {method} {path}: {e.code} {e.read().decode()}")


def post(node, path, body):
    return call(node, "POST", path, body)


def get(node, path):
    return call(node, "GET", path)


def until(node, path, what, cond, timeout=60):
    deadline = time.time() + timeout
    while True:
        v = get(node, path)
        if cond(v):
            return v
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what} at {node}: {json.dumps(v, ensure_ascii=False)[:400]}")
        time.sleep(0.3)


COMMUNITIES = ["c1", "c2", "c3"]
NEEDS = [("独居老人助餐志愿者", "助老"), ("社区活动室需要投影仪", "物资"), ("青少年暑期托管", "教育"),
         ("楼道灯维修", "设施"), ("义诊进社区", "医疗"), ("老旧小区加装扶手", "适老化"),
         ("垃圾分类督导员", "环境"), ("法律咨询服务", "法律"), ("防汛物资储备", "应急"),
         ("居民心理疏导", "医疗")]
RESOURCES = [("社区老年食堂", "助老"), ("党员志愿者服务队", "志愿服务"), ("社区医生团队", "医疗"),
             ("活动场地", "场地"), ("律师事务所公益律师", "法律"), ("物业维修队", "设施")]
SERVICES = ["政策宣讲", "文艺演出", "健康讲座", "安全培训", "读书会"]
PROJECTS = [("楼道加装扶手", "适老化", True), ("小区停车位改造", "设施", False),
            ("口袋公园建设", "环境", False), ("充电桩安装", "设施", True), ("社区书屋", "教育", False)]
PROBLEMS = [("楼道堆物占用消防通道", "消防"), ("路灯不亮", "设施"), ("下水道堵塞", "设施"),
            ("违章搭建", "城管"), ("噪音扰民", "环境"), ("非机动车乱停放", "城管")]
WISHES = ["孤寡老人想要一台收音机", "留守儿童想要一套绘本", "残疾人家庭需要轮椅", "困难家庭学生需要书包"]
GRID_NAMES = ["江苏路", "宁海路", "颐和路", "北京西路", "西康路", "天竺路", "牯岭路", "琅琊路"]


def load():
    street = nodes["street"]["unit"]
    now = int(time.time())
    for ci, c in enumerate(COMMUNITIES):
        name = nodes[c]["name"]
        zone = post(c, "/v1/grids", {"level": "zone", "name": f"{name}片区", "leader": "片区长",
                                     "counts": {"posts": 20, "members": 200}})
        for g in range(8):
            res = post(c, "/v1/grids", {
                "level": "residential", "name": f"{GRID_NAMES[g]}网格", "parent": zone["id"],
                "leader": f"网格长{g + 1}", "party_branch": f"第{g + 1}网格党支部",
                "counts": {"households": 150 + 10 * g, "compounds": 2 + g % 2, "resident_units": 2, "members": 120}})
            for m in range(2 if g < 4 else 1):
                post(c, "/v1/grids", {"level": "micro", "name": f"{GRID_NAMES[g]}{m + 1}号微网格",
                                      "parent": res["id"], "counts": {"households": 40, "members": 30}})
        for title, cat in rng.sample(NEEDS, 6):
            post(c, "/v1/items", {"list": "need", "title": title, "category": cat})
        for title, cat in rng.sample(RESOURCES, 3):
            post(c, "/v1/items", {"list": "resource", "title": title, "category": cat})
        for s in rng.sample(SERVICES, 2):
            post(c, "/v1/items", {"list": "service", "title": s, "category": "服务"})
        for title, cat, urgent in PROJECTS[ci:ci + 3]:
            post(c, "/v1/items", {"list": "project", "title": title, "category": cat, "urgent": urgent})
        for title, cat in rng.sample(PROBLEMS, 4):
            p = post(c, "/v1/items", {"list": "problem", "title": title, "category": cat})
            if cat == "城管":
                post(c, f"/v1/items/{p['id']}/escalate", {"to": "street"})
            else:
                post(c, f"/v1/items/{p['id']}/status", {"status": "resolved"})
        for w in rng.sample(WISHES, 2):
            post(c, "/v1/items", {"list": "wish", "title": w, "category": "微心愿"})
        a = post(c, "/v1/agreements", {
            "title": f"{name}与宁海路街道双向服务协议", "parties": [street],
            "start": now - 30 * 86400, "end": now + (60 + 120 * ci) * 86400,
            "services": ["组织党员志愿服务", "开放活动场地"], "contact": f"{name}党委"})
        post(c, f"/v1/agreements/{a['id']}/sign", {})
    for title, cat in [("街道社区卫生服务中心", "医疗"), ("街道综合执法队", "城管")]:
        post("street", "/v1/items", {"list": "resource", "title": title, "category": cat})
    post("hospital", "/v1/items", {"list": "resource", "title": "专家义诊团队", "category": "医疗"})
    post("street", "/v1/whistles", {"title": "汛期排水巡查", "category": "应急", "levels": ["community", "resident"]})
    post("district", "/v1/whistles", {"title": "全区文明城市创建", "category": "环境", "levels": ["street"]})
    print("  loaded: 3 communities × (1 zone + 8 residential + 12 micro grids, 6 needs, 3 resources,"
          " 2 services, 3 projects, 4 problems, 2 micro-wishes, 1 agreement), street and hospital resources, 2 whistles")


def cross():
    """Acts across units once the data has spread: claims, responses, signatures, handling."""
    until("street", "/v1/view/agreements", "the communities' agreements",
          lambda v: len(v["agreements"]) == 3)
    for a in get("street", "/v1/view/agreements")["agreements"]:
        until("street", f"/v1/view/agreements/{a['id']}", "the community's signature",
              lambda v: any(p["signed"] for p in v["party_signatures"]))
        post("street", f"/v1/agreements/{a['id']}/sign", {"note": "同意"})
    problems = until("street", "/v1/view/items?list=problem&limit=1000", "escalated problems",
                     lambda v: sum(1 for r in v["items"] if r["level"] == "street") >= 1)
    for r in problems["items"]:
        if r["level"] == "street":
            post("street", f"/v1/items/{r['id']}/status", {"status": "resolved"})
    # The school, a resident unit under 颐和路社区, holds its community's
    # documents and claims its urgent projects (急办项目) in its own.
    for r in get("c1", f"/v1/view/items?urgent=true&unit={nodes['c1']['unit']}")["items"]:
        until("school", f"/v1/view/items/{r['id']}", "the project at the school", lambda v: True)
        post("school", f"/v1/items/{r['id']}/claim", {"note": "学校党支部领办"})
    # The district takes on a micro-wish of every community.
    for c in COMMUNITIES:
        w = get(c, f"/v1/view/items?list=wish&unit={nodes[c]['unit']}&limit=1")["items"][0]
        until("district", f"/v1/view/items/{w['id']}", "the wish at the district", lambda v: True)
        post("district", f"/v1/items/{w['id']}/claim", {"note": "区机关党员认领"})
    w = [r for r in get("street", "/v1/view/items?list=whistle")["items"]
         if r["unit"] == nodes["street"]["unit"]][0]
    for unit, note in [("c1", "社区网格员报到"), ("hospital", "医院志愿者报到")]:
        until(unit, f"/v1/view/items/{w['id']}", "the street's whistle", lambda v: True)
        post(unit, f"/v1/whistles/{w['id']}/respond", {"note": note})
    print("  the street signed 3 agreements and resolved the problems escalated to it; the school"
          " claimed 颐和路社区's urgent projects; the district took on micro-wishes;"
          " 颐和路社区 and the hospital answered the street's whistle")


def report():
    d = "district"
    c3 = nodes["c3"]["unit"]
    until(d, f"/v1/view/items?unit={c3}&q=停电", "江苏路社区's offline need at the district",
          lambda v: len(v["items"]) == 1, timeout=120)
    print("\n  问题清单 by community (found → resolved; escalated ones resolved by the street):")
    stats = get(d, "/v1/view/stats?by=community")["stats"]
    by = {}
    for r in stats:
        if r["list"] == "problem" and r["area_name"]:
            f = by.setdefault(r["area_name"], [0, 0])
            f[0] += r["count"]
            f[1] += r["count"] if r["status"] == "resolved" else 0
    for k, (found, resolved) in sorted(by.items()):
        print(f"    {k:<8} found {found}, owner marked resolved {resolved}")
    items = get(d, "/v1/view/items?list=problem&limit=1000")["items"]
    handled = [r for r in items if any(a["kind"] == "handling" and a["resolved"] for a in r["acts"])]
    print(f"    handled and resolved by the street in its own document: {len(handled)}")
    print("\n  open needs beside resources of the same category and area (GET /v1/view/matches):")
    for m in get(d, "/v1/view/matches")["matches"][:6]:
        res = ", ".join(f"{r['title']}({r['unit_name']})" for r in m["resources"])
        print(f"    {m['need']['title']} [{m['need']['unit_name']}] ← {res}")
    print("\n  agreements active and ending within 120 days (GET /v1/view/agreements):")
    for a in get(d, "/v1/view/agreements?status=active&expiring_within_days=120")["agreements"]:
        print(f"    {a['title']}: {a['status_zh']}, ends in {a['ends_in_days']} days,"
              f" signed by {', '.join(p['name'] for p in a['party_signatures'] if p['signed'])}")
    print("\n  grid totals per community zone (GET /v1/view/grids):")
    for z in get(d, "/v1/view/grids")["grids"]:
        t = z["totals"]
        print(f"    {z['name']:<10} {t['households']} households, {t['compounds']} compounds,"
              f" {t['resident_units']} resident units, {t['members']} members")
    print("\n  units (pinyin order), last heard from and what the district still lacks:")
    for u in get(d, "/v1/view/units")["units"]:
        print(f"    {u['name']:<10} {u['kind']:<10} changes held {u['changes_held']:<4} lacking {u['heads_lacking']}")
    claimed = get(d, "/v1/view/items?claimed=true&limit=1000")["items"]
    print(f"\n  records claimed or answered across units: {len(claimed)}")
    a = until("c3", "/v1/view/digest", "江苏路社区's digest",
              lambda v: v["digest"] == get(d, f"/v1/view/digest?scope={c3}")["digest"], timeout=60)
    print(f"  one digest for 江苏路社区's scope on the community and at the district: {a['digest'][:16]}…")


if __name__ == "__main__":
    {"load": load, "cross": cross, "report": report}[sys.argv[2]]()
