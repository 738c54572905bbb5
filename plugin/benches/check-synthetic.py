#!/usr/bin/env python3
"""Writes a synthetic bundle of N plain Kubernetes objects (multi-document YAML) for the check
benchmark: groups of a hostPath PersistentVolume, a ConfigMap with redis.conf, a Service and a
StatefulSet, like a Redis deployment each."""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
out = sys.stdout
for i in range(n):
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
