# Read a scingest merged.h5ad with R's hdf5r alone (no anndata package) and print what the
# test compares with Python, one tab-separated record per line:
#   shape <cells> <genes> | sum <sum of X> | obs_name <name> (each cell, in order)
#   sample <category> <cells> <sum of X over its cells> (each category, in order)
# Usage: Rscript read_merged.R merged.h5ad
suppressPackageStartupMessages(library(hdf5r))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript read_merged.R merged.h5ad")
f <- H5File$new(args[1], mode = "r")

x <- f[["X"]]
if (h5attr(x, "encoding-type") != "csr_matrix") stop("X is not stored as csr_matrix")
shape <- h5attr(x, "shape")
data <- x[["data"]]$read()
indptr <- x[["indptr"]]$read()

obs <- f[["obs"]]
obs_names <- obs[[h5attr(obs, "_index")]]$read()
sample <- obs[["sample"]]
if (h5attr(sample, "encoding-type") != "categorical") stop("obs/sample is not categorical")
categories <- sample[["categories"]]$read()
codes <- sample[["codes"]]$read()

# the stored values of row i are data[(indptr[i] + 1):indptr[i + 1]]
row_of_value <- rep(seq_len(shape[1]), diff(indptr))
cell_sums <- numeric(shape[1])
sums <- rowsum(as.numeric(data), row_of_value)
cell_sums[as.integer(rownames(sums))] <- sums[, 1]

out <- c(
  sprintf("shape\t%d\t%d", shape[1], shape[2]),
  sprintf("sum\t%.1f", sum(as.numeric(data))),
  sprintf("obs_name\t%s", obs_names)
)
for (k in seq_along(categories)) {
  in_sample <- codes == k - 1
  out <- c(out, sprintf("sample\t%s\t%d\t%.1f", categories[k], sum(in_sample),
                        sum(cell_sums[in_sample])))
}
writeLines(out)
f$close_all()
