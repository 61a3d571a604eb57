//! The service graph: a petgraph DAG with an edge from each service to each
//! service it depends on (`depends_on` with its condition, restart and required
//! flags, plus the implicit edges of links, volumes_from and `service:`
//! namespaces). Answers start order (layers that may start in parallel), stop
//! order (the reverse), the subgraph for selected services, and dependents.
//!
//! Pure: built from a loaded `Project`; never starts anything.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::spec::model::{Dependency, Project, ServiceName};

/// Why a graph could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("dependency cycle detected: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("no such service: {0}")]
    UnknownService(String),
}

impl GraphError {
    /// The cycle as `a -> b -> a` (empty for other errors).
    pub fn cycle_text(&self) -> String {
        match self {
            GraphError::Cycle(names) => names.join(" -> "),
            GraphError::UnknownService(s) => s.clone(),
        }
    }
}

/// The dependency DAG of a project's services.
#[derive(Debug, Clone)]
pub struct ServiceGraph {
    graph: DiGraph<ServiceName, Dependency>,
    index: BTreeMap<ServiceName, NodeIndex>,
}

impl ServiceGraph {
    /// Builds the graph; a cycle is an error naming it.
    pub fn new(project: &Project) -> Result<Self, GraphError> {
        let names = project.service_names();
        let mut edges = Vec::new();
        for name in &names {
            for dep in project.dependencies(&name.0) {
                edges.push((name.clone(), dep));
            }
        }
        Self::from_edges(&names, edges)
    }

    /// Builds a graph from service names and (dependent, dependency) edges.
    /// Edges to services that do not exist are left out (optional dependencies
    /// on disabled services).
    pub fn from_edges(
        names: &[ServiceName],
        edges: Vec<(ServiceName, Dependency)>,
    ) -> Result<Self, GraphError> {
        let mut graph = DiGraph::new();
        let mut index = BTreeMap::new();
        for n in names {
            let i = graph.add_node(n.clone());
            index.insert(n.clone(), i);
        }
        for (from, dep) in edges {
            if let (Some(&a), Some(&b)) = (index.get(&from), index.get(&dep.service)) {
                graph.add_edge(a, b, dep);
            }
        }
        let g = ServiceGraph { graph, index };
        if let Some(cycle) = g.find_cycle() {
            return Err(GraphError::Cycle(cycle));
        }
        Ok(g)
    }

    /// A cycle as a list of names that ends where it starts, searching from
    /// services in name order (spec's search, over this graph's edges).
    fn find_cycle(&self) -> Option<Vec<String>> {
        let deps: BTreeMap<String, Vec<String>> = self
            .index
            .iter()
            .map(|(name, &n)| {
                let on = self
                    .graph
                    .neighbors_directed(n, Direction::Outgoing)
                    .map(|m| self.graph[m].0.clone())
                    .collect();
                (name.0.clone(), on)
            })
            .collect();
        crate::spec::model::find_cycle(&deps)
    }

    fn node(&self, name: &str) -> Result<NodeIndex, GraphError> {
        self.index
            .get(&ServiceName(name.to_string()))
            .copied()
            .ok_or_else(|| GraphError::UnknownService(name.to_string()))
    }

    /// Services in layers: every service's dependencies are in earlier layers;
    /// services of one layer may start in parallel. Each layer is sorted.
    pub fn start_layers(&self) -> Vec<Vec<ServiceName>> {
        let mut remaining: BTreeMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|n| {
                let deps: BTreeSet<NodeIndex> = self
                    .graph
                    .neighbors_directed(n, Direction::Outgoing)
                    .collect();
                (n, deps.len())
            })
            .collect();
        let mut layers = Vec::new();
        while !remaining.is_empty() {
            let ready: Vec<NodeIndex> = remaining
                .iter()
                .filter(|(_, c)| **c == 0)
                .map(|(n, _)| *n)
                .collect();
            if ready.is_empty() {
                break; // unreachable: cycles are refused at construction
            }
            for n in &ready {
                remaining.remove(n);
                let dependents: BTreeSet<NodeIndex> = self
                    .graph
                    .neighbors_directed(*n, Direction::Incoming)
                    .collect();
                for d in dependents {
                    if let Some(c) = remaining.get_mut(&d) {
                        *c = c.saturating_sub(1);
                    }
                }
            }
            let mut layer: Vec<ServiceName> =
                ready.iter().map(|n| self.graph[*n].clone()).collect();
            layer.sort();
            layers.push(layer);
        }
        layers
    }

    /// The reverse of the start order: dependents stop before their dependencies.
    pub fn stop_layers(&self) -> Vec<Vec<ServiceName>> {
        let mut l = self.start_layers();
        l.reverse();
        l
    }

    /// The selected services plus everything they depend on, transitively.
    pub fn subgraph(&self, selected: &[&str]) -> Result<ServiceGraph, GraphError> {
        let mut keep: BTreeSet<NodeIndex> = BTreeSet::new();
        let mut todo: Vec<NodeIndex> = selected
            .iter()
            .map(|s| self.node(s))
            .collect::<Result<_, _>>()?;
        while let Some(n) = todo.pop() {
            if keep.insert(n) {
                todo.extend(self.graph.neighbors_directed(n, Direction::Outgoing));
            }
        }
        let names: Vec<ServiceName> = keep.iter().map(|n| self.graph[*n].clone()).collect();
        let edges = self
            .graph
            .edge_references()
            .filter(|e| keep.contains(&e.source()) && keep.contains(&e.target()))
            .map(|e| (self.graph[e.source()].clone(), e.weight().clone()))
            .collect();
        ServiceGraph::from_edges(&names, edges)
    }

    /// The direct dependencies of a service, with their edge data.
    pub fn dependencies(&self, name: &str) -> Result<Vec<Dependency>, GraphError> {
        let n = self.node(name)?;
        let mut deps: Vec<Dependency> = self
            .graph
            .edges_directed(n, Direction::Outgoing)
            .map(|e| e.weight().clone())
            .collect();
        deps.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(deps)
    }

    /// Services that depend directly on `name`.
    pub fn dependents(&self, name: &str) -> Result<Vec<ServiceName>, GraphError> {
        let n = self.node(name)?;
        let mut out: Vec<ServiceName> = self
            .graph
            .neighbors_directed(n, Direction::Incoming)
            .map(|d| self.graph[d].clone())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    pub fn services(&self) -> Vec<ServiceName> {
        self.index.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests;
