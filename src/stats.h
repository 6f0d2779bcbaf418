#ifndef FERRY_STATS_H
#define FERRY_STATS_H
int stats_main(int argc, char **argv);
#endif
