// Linked with one dsv3 library whole and only the libraries it declares as dependencies
// (CMakeLists.txt, dsv3_layer): if any of its code calls into a layer above it, this link
// fails with the undefined symbol.
int main() { return 0; }
