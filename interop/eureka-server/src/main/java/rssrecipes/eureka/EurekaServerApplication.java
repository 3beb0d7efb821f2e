package rssrecipes.eureka;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.cloud.netflix.eureka.server.EnableEurekaServer;

/**
 * A stand-alone Netflix Eureka server, as teams run it with Spring Cloud:
 * the peer our services must work with unchanged. Settings are in
 * application.properties; scripts/eureka.sh starts it.
 */
@SpringBootApplication
@EnableEurekaServer
public class EurekaServerApplication {
    public static void main(String[] args) {
        SpringApplication.run(EurekaServerApplication.class, args);
    }
}
