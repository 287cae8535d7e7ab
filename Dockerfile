# runwarden image: the MCP server (`serve`) and task workers (`worker`) from one build.
# Task templates run in per-template Python environments built on first use under /data/envs.
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --ignore-scripts && npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates fonts-dejavu-core \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production RUNWARDEN_DATA_DIR=/data RUNWARDEN_HTTP_HOST=0.0.0.0
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY prompts ./prompts
COPY tasks ./tasks
VOLUME ["/data"]
EXPOSE 7341
ENTRYPOINT ["node", "bin/runwarden.js"]
CMD ["serve"]
