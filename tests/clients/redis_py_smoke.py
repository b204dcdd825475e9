"""redis-py against a running meridian: the calls applications make most, unmodified.

Usage: python3 redis_py_smoke.py PORT   (exits non-zero with a message on the first mismatch)
"""

import sys

import redis


def main(port):
    r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    assert r.ping() is True
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == "hello"
    assert r.set("greeting", "again", nx=True) is None
    assert r.incr("visits") == 1 and r.incrby("visits", 9) == 10
    assert r.incrbyfloat("ratio", 0.5) == 0.5
    assert r.mset({"a": "1", "b": "2"}) is True and r.mget("a", "b", "zz") == ["1", "2", None]
    assert r.expire("a", 100) is True and 0 < r.ttl("a") <= 100
    assert r.exists("a", "b", "zz") == 2
    assert sorted(r.keys("*")) == ["a", "b", "greeting", "ratio", "visits"]
    assert sorted(r.scan_iter(match="*", count=2)) == ["a", "b", "greeting", "ratio", "visits"]
    with r.pipeline(transaction=True) as pipe:
        pipe.incr("visits").get("visits")
        assert pipe.execute() == [11, "11"]
    try:
        r.incr("greeting")
        raise AssertionError("INCR on a string must fail")
    except redis.ResponseError as e:
        assert str(e) == "value is not an integer or out of range", str(e)
    info = r.info()
    assert info["redis_version"] == "7.2.4" and info["db0"]["keys"] == 5, info
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    assert r.client_setname("py") is True and r.client_getname() == "py"
    assert r.delete("a", "b") == 2 and r.dbsize() == 3
    r3 = redis.Redis(host="127.0.0.1", port=port, protocol=3, decode_responses=True)
    assert r3.get("greeting") == "hello" and r3.get("nothing") is None
    assert r3.config_get("maxmemory") == {"maxmemory": "0"}
    assert r.flushall() is True and r.dbsize() == 0
    print("redis-py ok")


if __name__ == "__main__":
    main(int(sys.argv[1]))
