#!/usr/bin/env python3
"""Writes a synthetic bundle of N plain Kubernetes objects (multi-document YAML) for the check
benchmark: groups of a hostPath PersistentVolume, a ConfigMap with redis.conf, a Service and a
StatefulSet, like a Redis deployment each.

Usage: check-synthetic.py N                  the bundle on standard output
       check-synthetic.py N DIR [PER_FILE]   the bundle in DIR/bundle-NNN.yaml, PER_FILE objects
                                             (default 10,000, ~3 MB) a file, so that no file
                                             reaches the spec size limit however large N is
"""
import os
import sys


def write(out, start, end):
    for i in range(start, end):
        g, k = divmod(i, 4)
        name = f"redis-{g}"
        if k == 0:
            out.write(f"""---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}-pv}}
spec:
  storageClassName: manual
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  hostPath: {{path: /data/{name}, type: DirectoryOrCreate}}
""")
        elif k == 1:
            out.write(f"""---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}-config}}
data:
  redis.conf: |
    appendonly yes
    dir /data
""")
        elif k == 2:
            out.write(f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: client, port: 6379, targetPort: 6379}}]
""")
        else:
            out.write(f"""---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}}}
spec:
  replicas: 1
  serviceName: {name}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: redis
        image: redis:7.0.15
        command: [redis-server, /conf/redis.conf]
        ports: [{{name: client, containerPort: 6379}}]
        volumeMounts: [{{name: conf, mountPath: /conf}}, {{name: data, mountPath: /data}}]
      volumes: [{{name: conf, configMap: {{name: {name}-config}}}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      storageClassName: manual
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
""")


n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
if len(sys.argv) > 2:
    directory = sys.argv[2]
    per_file = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    # Whole groups of four in each file, so that every file is a valid bundle of its own.
    per_file = max(4, per_file - per_file % 4)
    os.makedirs(directory, exist_ok=True)
    for number, start in enumerate(range(0, n, per_file)):
        with open(os.path.join(directory, f"bundle-{number:03}.yaml"), "w") as out:
            write(out, start, min(n, start + per_file))
else:
    write(sys.stdout, 0, n)
