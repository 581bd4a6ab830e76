/* The n-body simulation of the Computer Language Benchmarks Game (Jovian planets), in double;
 * the checksum is the final energy. The square root is Newton's method, so no libm is needed. */
#include "kernels.h"

#define PI 3.141592653589793
#define SOLAR_MASS (4 * PI * PI)
#define DAYS_PER_YEAR 365.24
#define BODIES 5

struct body { double x, y, z, vx, vy, vz, mass; };

static double root(double v) {
    double r = v > 1 ? v : 1;
    for (int i = 0; i < 60; i++) {
        double next = 0.5 * (r + v / r);
        if (next == r)
            break;
        r = next;
    }
    return r;
}

static double energy(const struct body *s) {
    double e = 0;
    for (int i = 0; i < BODIES; i++) {
        e += 0.5 * s[i].mass * (s[i].vx * s[i].vx + s[i].vy * s[i].vy + s[i].vz * s[i].vz);
        for (int j = i + 1; j < BODIES; j++) {
            double dx = s[i].x - s[j].x, dy = s[i].y - s[j].y, dz = s[i].z - s[j].z;
            e -= s[i].mass * s[j].mass / root(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

uint32_t bench_nbody(uint32_t steps) {
    struct body s[BODIES] = {
        {0, 0, 0, 0, 0, 0, SOLAR_MASS},
        {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * DAYS_PER_YEAR, 7.69901118419740425e-03 * DAYS_PER_YEAR,
         -6.90460016972063023e-05 * DAYS_PER_YEAR, 9.54791938424326609e-04 * SOLAR_MASS},
        {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * DAYS_PER_YEAR, 4.99852801234917238e-03 * DAYS_PER_YEAR,
         2.30417297573763929e-05 * DAYS_PER_YEAR, 2.85885980666130812e-04 * SOLAR_MASS},
        {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * DAYS_PER_YEAR, 2.37847173959480950e-03 * DAYS_PER_YEAR,
         -2.96589568540237556e-05 * DAYS_PER_YEAR, 4.36624404335156298e-05 * SOLAR_MASS},
        {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * DAYS_PER_YEAR, 1.62824170038242295e-03 * DAYS_PER_YEAR,
         -9.51592254519715870e-05 * DAYS_PER_YEAR, 5.15138902046611451e-05 * SOLAR_MASS},
    };
    const double dt = 0.01;
    for (uint32_t step = 0; step < steps; step++) {
        for (int i = 0; i < BODIES; i++)
            for (int j = i + 1; j < BODIES; j++) {
                double dx = s[i].x - s[j].x, dy = s[i].y - s[j].y, dz = s[i].z - s[j].z;
                double d2 = dx * dx + dy * dy + dz * dz;
                double mag = dt / (d2 * root(d2));
                s[i].vx -= dx * s[j].mass * mag; s[i].vy -= dy * s[j].mass * mag; s[i].vz -= dz * s[j].mass * mag;
                s[j].vx += dx * s[i].mass * mag; s[j].vy += dy * s[i].mass * mag; s[j].vz += dz * s[i].mass * mag;
            }
        for (int i = 0; i < BODIES; i++) {
            s[i].x += dt * s[i].vx; s[i].y += dt * s[i].vy; s[i].z += dt * s[i].vz;
        }
    }
    return (uint32_t)(int64_t)(energy(s) * -1e9);
}
