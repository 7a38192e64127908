// Package deploy holds the Docker Swarm deployment of simswarm: the images
// (simswarm.Dockerfile, runtime.Dockerfile), the stack (stack.yml) and, in
// docs/deploy-swarm.md, the guide. It has no Go code of its own, only
// tests. They check what can be checked without a Docker engine, which
// does not exist on the machines that run them (only the docker client
// does): the stack's schema (docker stack config, offline), what the schema
// cannot say (networks, placement, secrets, ports, the distcc allow list),
// the Dockerfiles' invariants, the guide's commands, and, in
// services_test.go, the services' exact commands run as processes in
// network namespaces named after the services.
package deploy
