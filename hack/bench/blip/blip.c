// blip is the restart-timing program of the supervisor recipes: every
// supervisor in the benchmark runs this same binary.
// blip LOG [EXIT_STATUS=1] [LIVE_MS=0]: logs "S <ns>" at start, sleeps LIVE_MS, logs "E <ns>" right before exiting.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
static long long now(void){struct timespec t;clock_gettime(CLOCK_REALTIME,&t);return t.tv_sec*1000000000LL+t.tv_nsec;}
int main(int c,char**v){
  long long s=now(); char b[64]; int fd=open(c>1?v[1]:"/tmp/blip.log",O_WRONLY|O_APPEND|O_CREAT,0644);
  int n=snprintf(b,sizeof b,"S %lld\n",s); write(fd,b,n);
  if(c>3){long ms=atol(v[3]); struct timespec d={ms/1000,(ms%1000)*1000000L}; nanosleep(&d,0);}
  n=snprintf(b,sizeof b,"E %lld\n",now()); write(fd,b,n); close(fd);
  return c>2?atoi(v[2]):1;}
