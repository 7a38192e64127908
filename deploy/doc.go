// Package deploy holds the Docker Swarm deployment of simswarm: the images
// (simswarm.Dockerfile, runtime.Dockerfile, both built by build-images.sh),
// the stack (stack.yml), the checks around `docker stack deploy`
// (preflight.sh, wait-stack.sh) and, in docs/deploy-swarm.md, the guide.
// It has no Go code of its own, only tests. Without a Docker engine they
// check the stack's schema (docker stack config, offline), what the schema
// cannot say (networks, placement, secrets, ports, the distcc allow list),
// the Dockerfiles' invariants, the guide's commands, and, in
// services_test.go, the services' exact commands run as processes in
// network namespaces named after the services. With Debian's docker.io
// installed, swarm_test.go deploys the stack on a real swarm of Docker
// engines in network namespaces (swarmlab_test.go), running the guide's
// marked blocks as they are written.
package deploy
